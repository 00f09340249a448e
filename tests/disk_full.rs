//! A full disk, on a real small filesystem (a size-limited tmpfs mounted over one
//! member's data directory; the tests run as root, and fail if mounting does not
//! work): the member stops with a message naming the file and the error, the cluster
//! keeps every write it acknowledged, and after space is freed and the member
//! restarts, it rejoins with nothing lost. Once with the full disk on a follower, once
//! on the leader.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{wait_for, Cluster};

/// A tmpfs mounted at a path; unmounted on drop.
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed (these tests need root): {status}",
            path.display()
        );
        Mount {
            path: path.to_path_buf(),
        }
    }

    /// Frees space: grows the filesystem.
    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "remount {}: {status}",
            self.path.display()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Node 1 (index 0) times out first, so it is elected; the others wait long.
fn cluster_led_by_node_1() -> Cluster {
    let mut cluster = Cluster::new(3, &[]);
    cluster.set_node_args(
        0,
        &[
            "--election-timeout-min-ms",
            "150",
            "--election-timeout-max-ms",
            "200",
        ],
    );
    for i in 1..3 {
        cluster.set_node_args(
            i,
            &[
                "--election-timeout-min-ms",
                "1500",
                "--election-timeout-max-ms",
                "2000",
            ],
        );
    }
    cluster
}

/// Writes 4 KiB values until node `full` has stopped, then `after` more; returns the
/// acknowledged keys.
fn write_until_stopped(cluster: &mut Cluster, full: usize, after: usize) -> Vec<String> {
    let value = "d".repeat(4096);
    let mut acked = Vec::new();
    let mut extra = 0;
    for n in 0..2000 {
        if !cluster.is_running(full) {
            extra += 1;
            if extra > after {
                return acked;
            }
        }
        let key = format!("key{n}");
        let out = cluster.client_all(&["--timeout", "5", "put", &key, &value]);
        if out.code == Some(0) {
            acked.push(key);
        }
    }
    panic!("node {} never stopped\n{}", full + 1, cluster.logs());
}

fn check_stop_message(cluster: &Cluster, full: usize) {
    let log = std::fs::read_to_string(cluster.log_path(full)).expect("log");
    let dir = cluster.data_dir(full).display().to_string();
    let line = log
        .lines()
        .find(|l| l.contains("fatal"))
        .unwrap_or_else(|| panic!("no fatal line in node {}'s log:\n{log}", full + 1));
    assert!(line.contains("No space left"), "{line}");
    assert!(line.contains(&dir), "the message names no file: {line}");
}

/// Restarts node `full` after freeing space and checks it holds every acknowledged
/// write once it caught up.
fn rejoin_with_nothing_lost(cluster: &mut Cluster, mount: &Mount, full: usize, acked: &[String]) {
    mount.grow("256m");
    cluster.kill(full); // reaps the exited process
    cluster.start_node(full);
    let value = "d".repeat(4096);
    let last = acked.last().expect("some writes were acknowledged");
    let caught_up = wait_for(Duration::from_secs(30), || {
        let out = cluster.client(&[full], &["--timeout", "2", "get", "--stale", last]);
        (out.code == Some(0)).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "node {} did not catch up\n{}",
        full + 1,
        cluster.logs()
    );
    for key in acked {
        let out = cluster.client(&[full], &["get", "--stale", key]);
        assert_eq!(
            out.code,
            Some(0),
            "{key} lost on node {}: {out:?}",
            full + 1
        );
        assert_eq!(out.stdout.trim_end(), value, "{key} altered");
        let out = cluster.client_all(&["get", key]);
        assert_eq!(out.code, Some(0), "{key} lost in the cluster: {out:?}");
    }
}

#[test]
fn a_follower_with_a_full_disk_stops_and_rejoins_with_nothing_lost() {
    fill_the_disk_of(2);
}

#[test]
fn a_leader_with_a_full_disk_stops_and_rejoins_with_nothing_lost() {
    fill_the_disk_of(0);
}

/// Node `full` (node 1 leads) runs on a 256 KiB tmpfs: writes fill it, the node stops
/// naming the file and the error, and after the disk grows it rejoins with every
/// acknowledged write.
fn fill_the_disk_of(full: usize) {
    let mut cluster = cluster_led_by_node_1();
    let mount = Mount::tmpfs(&cluster.data_dir(full), "256k");
    for i in 0..3 {
        cluster.start_node(i);
    }
    assert_eq!(cluster.leader(), 0, "{}", cluster.logs());
    let acked = write_until_stopped(&mut cluster, full, 5);
    check_stop_message(&cluster, full);
    rejoin_with_nothing_lost(&mut cluster, &mount, full, &acked);
}
