//! Line-oriented logging to stderr: one line per event that matters, with the time,
//! the level and the node it concerns. No logging crate: the user allowed five
//! runtime dependencies and this needs none.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// How much to log. Ordered from quietest to noisiest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only failures.
    Error,
    /// Failures and things that look wrong but are survivable.
    Warn,
    /// Role changes, elections, peers connected or lost, recovery summaries.
    Info,
    /// Everything above plus per-connection detail.
    Debug,
}

impl Level {
    /// Parses `error`, `warn`, `info` or `debug` (any case).
    pub fn parse(text: &str) -> Option<Level> {
        match text.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// A logger for one node: every line it writes names that node.
#[derive(Clone, Debug)]
pub struct Logger {
    prefix: String,
    level: Level,
}

impl Logger {
    /// A logger whose lines start with `prefix` (e.g. `n1`) and that drops lines
    /// noisier than `level`.
    pub fn new(prefix: impl Into<String>, level: Level) -> Logger {
        Logger {
            prefix: prefix.into(),
            level,
        }
    }

    /// True if lines at `level` are written.
    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    /// Writes one line at `level`.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        let line = format!(
            "{} {:5} {} {}\n",
            utc_now(),
            level.label(),
            self.prefix,
            args
        );
        // One write call per line so lines from different threads do not interleave.
        // A failed write to stderr has nowhere to be reported; ignore it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// Writes an error line.
    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Error, args)
    }

    /// Writes a warning line.
    pub fn warn(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Warn, args)
    }

    /// Writes an info line.
    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Info, args)
    }

    /// Writes a debug line.
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Debug, args)
    }
}

/// The wall-clock time of day in UTC as `HH:MM:SS.mmm`, for log lines only.
fn utc_now() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms_of_day = since_epoch.as_millis() % 86_400_000;
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("INFO"), Some(Level::Info));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
        let logger = Logger::new("n1", Level::Info);
        assert!(logger.enabled(Level::Error));
        assert!(!logger.enabled(Level::Debug));
    }

    #[test]
    fn time_of_day_has_fixed_width() {
        let t = utc_now();
        assert_eq!(t.len(), 12, "{t}");
        assert_eq!(&t[2..3], ":");
        assert_eq!(&t[8..9], ".");
    }
}
