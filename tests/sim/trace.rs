//! A bounded trace of the most recent simulator events, printed when a run fails.

use std::collections::VecDeque;
use std::fmt::{self, Write};

/// How many events a failure report shows.
pub const TRACE_EVENTS: usize = 60;

/// The last [`TRACE_EVENTS`] events, oldest first. Strings are recycled so recording
/// an event does not allocate once the ring is full.
pub struct Trace {
    events: VecDeque<String>,
    /// Events recorded since the start of the run, shown so a reader knows how far in
    /// the failure happened.
    total: u64,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Trace {
        Trace {
            events: VecDeque::with_capacity(TRACE_EVENTS),
            total: 0,
        }
    }

    /// Records one event at simulated time `now_ms`.
    pub fn record(&mut self, now_ms: u64, event: fmt::Arguments<'_>) {
        let mut line = if self.events.len() == TRACE_EVENTS {
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
