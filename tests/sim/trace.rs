//! A bounded trace of the most recent simulator events, printed when a run fails.

use std::collections::VecDeque;
use std::fmt::{self, Write};

use raftkv::raft::HardState;

/// How many events a failure report shows, unless `RAFTKV_SIM_TRACE` says otherwise.
pub const TRACE_EVENTS: usize = 60;

/// The last [`TRACE_EVENTS`] events, oldest first. Strings are recycled so recording
/// an event does not allocate once the ring is full.
pub struct Trace {
    events: VecDeque<String>,
    capacity: usize,
    /// Events recorded since the start of the run, shown so a reader knows how far in
    /// the failure happened.
    total: u64,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Trace {
        let capacity = std::env::var("RAFTKV_SIM_TRACE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(TRACE_EVENTS)
            .max(1);
        Trace {
            events: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
            total: 0,
        }
    }

    /// Records one event at simulated time `now_ms`.
    pub fn record(&mut self, now_ms: u64, event: fmt::Arguments<'_>) {
        let mut line = if self.events.len() == self.capacity {
            self.events.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        line.clear();
        // Writing into a String cannot fail.
        let _ = write!(line, "{now_ms:>8}ms  {event}");
        self.events.push_back(line);
        self.total += 1;
    }

    /// The trace as text, one event per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let first = self.total - self.events.len() as u64;
        for (i, line) in self.events.iter().enumerate() {
            let _ = writeln!(out, "  #{:<7} {line}", first + i as u64);
        }
        out
    }
}

/// A hard state in the trace: `t5/v2`, or `-` if unchanged.
pub struct HardStateBrief(pub Option<HardState>);

impl fmt::Display for HardStateBrief {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => write!(f, "hs=-"),
            Some(hs) => match hs.voted_for {
                Some(v) => write!(f, "hs=t{}/v{v}", hs.current_term),
                None => write!(f, "hs=t{}/v-", hs.current_term),
            },
        }
    }
}
