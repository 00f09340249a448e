//! Client request metrics: the kind of a request and how its answer ended, as
//! `raftkv_client_requests_total{op,result}` labels them, recorded where the answer is
//! built (atomics only).

use std::time::Instant;

use super::shared::Shared;
use crate::kv::{Command, CommandResult};
use crate::metrics::{ClientOp, ClientResult};
use crate::net::{ClientRequest, ClientResponse};

/// The kind of `request`.
pub fn op_of(request: &ClientRequest) -> ClientOp {
    match request {
        ClientRequest::Get { .. } => ClientOp::Get,
        ClientRequest::Write(write) => match write.command {
            Command::Put { .. } => ClientOp::Put,
            Command::Delete { .. } => ClientOp::Delete,
            Command::Cas { .. } => ClientOp::Cas,
            Command::Check => ClientOp::Other,
        },
        _ => ClientOp::Other,
    }
}

/// How `response` ended, grouped as the client's exit codes.
pub fn result_of(response: &ClientResponse) -> ClientResult {
    match response {
        ClientResponse::Written(CommandResult::CasMismatch { .. })
        | ClientResponse::MemberRefused { .. }
        | ClientResponse::TransferLeader(Err(_)) => ClientResult::Refused,
        ClientResponse::Written(_)
        | ClientResponse::Value(_)
        | ClientResponse::Status(_)
        | ClientResponse::TransferLeader(Ok(_))
        | ClientResponse::Members(_) => ClientResult::Ok,
        ClientResponse::NotLeader { .. } => ClientResult::Unavailable,
        ClientResponse::Unavailable {
            outcome_unknown: true,
            ..
        } => ClientResult::Unknown,
        ClientResponse::Unavailable { .. } => ClientResult::Unavailable,
        ClientResponse::Error { .. }
        | ClientResponse::TooLarge { .. }
        | ClientResponse::SessionExpired { .. } => ClientResult::Error,
    }
}

/// Records one answered request of kind `op` started at `started`; a write whose
/// outcome is unknown or that failed also counts as a failed proposal.
pub fn record(shared: &Shared, op: ClientOp, started: Instant, response: &ClientResponse) {
    let result = result_of(response);
    shared.metrics.client_request(op, result, started.elapsed());
    let write = matches!(op, ClientOp::Put | ClientOp::Delete | ClientOp::Cas);
    if write && matches!(result, ClientResult::Unknown | ClientResult::Error) {
        shared.metrics.proposals_failed.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Request;

    #[test]
    fn writes_are_labelled_by_command_and_answers_by_exit_code() {
        let put = ClientRequest::Write(Request {
            client_id: 1,
            seq: 1,
            command: Command::Put {
                key: "k".into(),
                value: "v".into(),
            },
        });
        assert_eq!(op_of(&put), ClientOp::Put);
        assert_eq!(op_of(&ClientRequest::Status), ClientOp::Other);
        let unknown = ClientResponse::Unavailable {
            reason: String::new(),
            outcome_unknown: true,
        };
        assert_eq!(result_of(&unknown), ClientResult::Unknown);
        let mismatch = ClientResponse::Written(CommandResult::CasMismatch { current: None });
        assert_eq!(result_of(&mismatch), ClientResult::Refused);
        let redirect = ClientResponse::NotLeader {
            leader_id: None,
            leader_addr: None,
        };
        assert_eq!(result_of(&redirect), ClientResult::Unavailable);
        assert_eq!(
            result_of(&ClientResponse::Written(CommandResult::Put)),
            ClientResult::Ok
        );
    }
}
