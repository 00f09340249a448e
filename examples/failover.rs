//! Starts a three-node cluster inside one process through the library API, writes and
//! reads, stops the leader, and shows a new leader taking over with the data intact.
//!
//!     cargo run --release --example failover

use std::net::TcpListener;
use std::time::{Duration, Instant};

use raftkv::client::{Client, ClientOptions};
use raftkv::node::{Node, NodeConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join(format!("raftkv-failover-{}", std::process::id()));
    let addrs = free_addrs(3)?;
    let mut nodes: Vec<Option<Node>> = Vec::new();
    for id in 1..=3u64 {
        let mut config = NodeConfig::new(
            id,
            addrs[id as usize - 1].clone(),
            addrs.clone(),
            root.join(format!("node{id}")),
        );
        config.log_level = raftkv::logging::Level::Warn;
        nodes.push(Some(Node::start(config)?));
    }
    let leader = wait_for_leader(&nodes, Duration::from_secs(10)).ok_or("no leader elected")?;
    println!("node {} leads", leader + 1);

    let mut client = Client::new(addrs.clone(), ClientOptions::default());
    client.put("city", "Lisbon")?;
    println!(
        "put city=Lisbon; get city -> {:?}",
        client.get("city", false)?
    );

    println!("stopping the leader, node {}", leader + 1);
    if let Some(node) = nodes[leader].take() {
        node.shutdown()?;
    }
    let started = Instant::now();
    let new = wait_for_leader(&nodes, Duration::from_secs(10)).ok_or("no new leader")?;
    println!(
        "node {} leads after {} ms",
        new + 1,
        started.elapsed().as_millis()
    );
    println!("get city -> {:?}", client.get("city", false)?);
    client.put("city", "Porto")?;
    println!(
        "put city=Porto; get city -> {:?}",
        client.get("city", false)?
    );

    for node in nodes.into_iter().flatten() {
        node.shutdown()?;
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

fn free_addrs(n: usize) -> std::io::Result<Vec<String>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect()
}

/// Polls the running nodes' status until one leads.
fn wait_for_leader(nodes: &[Option<Node>], deadline: Duration) -> Option<usize> {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        for (i, node) in nodes.iter().enumerate() {
            if node.as_ref().is_some_and(|n| n.status().role == "leader") {
                return Some(i);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
