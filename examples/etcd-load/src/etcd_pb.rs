//! The handful of etcd v3 messages the load generator sends and reads, declared by hand
//! with prost derives so that no `protoc` is needed. Field numbers follow etcd's
//! `etcdserverpb/rpc.proto` and `mvccpb/kv.proto`; fields we never set or read are
//! left out (protobuf skips unknown fields).

/// The header on every etcd response; a put's revision proves it was applied.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    /// The store revision after the request.
    #[prost(int64, tag = "3")]
    pub revision: i64,
}

/// One stored key and its value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// `KV/Put`: store one key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// The answer to a put.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    /// Carries the revision the put created.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `KV/Range` for a single key: linearizable unless `serializable`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// True reads the contacted member's state without a quorum check.
    #[prost(bool, tag = "7")]
    pub serializable: bool,
}

/// The answer to a range.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    /// The keys found.
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
}

/// The gRPC method path of a put.
pub const PUT_PATH: &str = "/etcdserverpb.KV/Put";
/// The gRPC method path of a range.
pub const RANGE_PATH: &str = "/etcdserverpb.KV/Range";
