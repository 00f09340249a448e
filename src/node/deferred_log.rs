//! Log lines decided under the Raft mutex and written after releasing it, so that a
//! stalled stderr (a full pipe) can never stall the node while it holds `core`:
//! role changes, election timeouts, and faults of peers reported by the core
//! ([`Raft::take_peer_faults`](crate::raft::Raft::take_peer_faults)).
//!
//! `Shared::dispatch_deferred` moves the queued lines into the [`Wakeups`] it returns;
//! `Wakeups::deliver`, called after the unlock, writes them. The rare paths that
//! deliver with `core` held (`Shared::dispatch`) leave the lines queued in
//! `CoreState` for the next deferred delivery.
//!
//! [`Wakeups`]: super::shared::Wakeups

use crate::logging::{Level, Logger};

/// Most lines queued; beyond it lines are counted, and the count is logged instead.
pub const MAX_DEFERRED_LINES: usize = 256;

/// Lines waiting to be written, oldest first, bounded by [`MAX_DEFERRED_LINES`].
#[derive(Debug, Default)]
pub struct DeferredLog {
    lines: Vec<(Level, String)>,
    dropped: u64,
}

impl DeferredLog {
    /// Queues a line at `level` (dropped at once if `log` would not write it).
    pub fn push(&mut self, log: &Logger, level: Level, line: String) {
        if !log.enabled(level) {
            return;
        }
        if self.lines.len() < MAX_DEFERRED_LINES {
            self.lines.push((level, line));
        } else {
            self.dropped += 1;
        }
    }

    /// Puts `earlier` (lines queued before these) back in front.
    pub fn put_back(&mut self, earlier: DeferredLog) {
        let mut lines = earlier.lines;
        lines.append(&mut self.lines);
        let keep = lines.len().min(MAX_DEFERRED_LINES);
        self.dropped += earlier.dropped + (lines.len() - keep) as u64;
        lines.truncate(keep);
        self.lines = lines;
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.dropped == 0
    }

    /// Writes every line. Call without holding the Raft mutex.
    pub fn write(self, log: &Logger) {
        for (level, line) in self.lines {
            log.log(level, format_args!("{line}"));
        }
        if self.dropped > 0 {
            log.warn(format_args!(
                "{} log lines dropped (more than {MAX_DEFERRED_LINES} queued)",
                self.dropped
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let log = Logger::new("t", Level::Debug);
        let mut queue = DeferredLog::default();
        for k in 0..MAX_DEFERRED_LINES + 3 {
            queue.push(&log, Level::Info, format!("line {k}"));
        }
        assert_eq!((queue.lines.len(), queue.dropped), (MAX_DEFERRED_LINES, 3));
        let mut later = DeferredLog::default();
        later.push(&log, Level::Error, "later".to_string());
        later.put_back(queue);
        assert_eq!(later.lines.len(), MAX_DEFERRED_LINES);
        assert_eq!(later.lines[0].1, "line 0", "older lines first");
        assert_eq!(later.dropped, 4);
    }

    #[test]
    fn lines_the_logger_would_not_write_are_not_queued() {
        let log = Logger::new("t", Level::Info);
        let mut queue = DeferredLog::default();
        queue.push(&log, Level::Debug, "noise".to_string());
        assert!(queue.is_empty());
    }
}
