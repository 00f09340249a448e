//! `raftkv client status --all`: one row per member (its own view plus its lag behind
//! the leader), as a table on a terminal, `key: value` blocks otherwise, or JSON.
//!
//! Every member is asked on its own thread, each call within its own deadline, so an
//! unreachable member costs at most one deadline and never hangs the command.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::thread;
use std::time::Duration;

use raftkv::client::{Client, ClientOptions};
use raftkv::net::{normalize_addr, StatusReport};

use super::{EXIT_OK, EXIT_UNAVAILABLE};

/// Longest wait for any one member's answer, whatever `--timeout` says.
const MAX_WAIT_PER_MEMBER: Duration = Duration::from_secs(2);

/// Most addresses asked (and threads started) at once: a bound on a hostile or
/// mistaken member list.
const MAX_MEMBERS: usize = 256;

/// The columns, in order: the keys of every row and JSON object.
const KEYS: [&str; 11] = [
    "id",
    "addr",
    "role",
    "term",
    "leader",
    "commit_index",
    "applied_index",
    "lag",
    "snapshot_index",
    "data_bytes",
    "alarm",
];

/// One member's row: its id (None: an `--addr` entry that did not answer and is not
/// in the leader's member list), the address asked, and its report if it answered.
struct Row {
    id: Option<u64>,
    addr: String,
    report: Option<StatusReport>,
}

/// Asks every member, prints the rows; returns 0 if some member names a leader, 3 if
/// none does.
pub fn run(addrs: &[String], options: &ClientOptions, json: bool) -> u8 {
    let mut opts = options.clone();
    opts.timeout = opts.timeout.min(MAX_WAIT_PER_MEMBER);
    let asked: Vec<String> = addrs.iter().map(|a| normalize_addr(a)).collect();
    let mut answers = ask_all(&asked, &opts);
    // The leader's configuration adds the members missing from --addr.
    let members = Client::new(asked.clone(), opts.clone())
        .members()
        .unwrap_or_default();
    let extra: Vec<String> = members
        .iter()
        .map(|m| normalize_addr(&m.addr))
        .filter(|a| !asked.contains(a))
        .collect();
    answers.extend(ask_all(&extra, &opts));
    let rows = build_rows(answers, &members);
    let leader = leader_report(&rows);
    let text = if json {
        to_json(&rows, leader)
    } else if std::io::stdout().is_terminal() {
        to_table(&rows, leader)
    } else {
        to_blocks(&rows, leader)
    };
    print!("{text}");
    if leader.is_some() {
        EXIT_OK
    } else {
        eprintln!("raftkv client: no reachable member names a leader");
        EXIT_UNAVAILABLE
    }
}

/// Asks each address for its status on its own thread (at most [`MAX_MEMBERS`]).
fn ask_all(addrs: &[String], opts: &ClientOptions) -> Vec<(String, Option<StatusReport>)> {
    let handles: Vec<_> = addrs
        .iter()
        .take(MAX_MEMBERS)
        .map(|addr| {
            let (addr, opts) = (addr.clone(), opts.clone());
            thread::spawn(move || {
                let report = Client::new(vec![addr.clone()], opts).status().ok();
                (addr, report)
            })
        })
        .collect();
    handles.into_iter().filter_map(|h| h.join().ok()).collect()
}

/// One row per member id (ascending), then the unanswered `--addr` entries that
/// name no member.
fn build_rows(
    answers: Vec<(String, Option<StatusReport>)>,
    members: &[raftkv::net::MemberInfo],
) -> Vec<Row> {
    let mut by_id: BTreeMap<u64, Row> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (addr, report) in answers {
        match report {
            Some(report) => {
                let id = report.id;
                by_id.entry(id).or_insert(Row {
                    id: Some(id),
                    addr,
                    report: Some(report),
                });
            }
            None => unknown.push(addr),
        }
    }
    for member in members {
        let addr = normalize_addr(&member.addr);
        unknown.retain(|a| *a != addr);
        by_id.entry(member.id).or_insert(Row {
            id: Some(member.id),
            addr,
            report: None,
        });
    }
    let mut rows: Vec<Row> = by_id.into_values().collect();
    rows.extend(unknown.into_iter().map(|addr| Row {
        id: None,
        addr,
        report: None,
    }));
    rows
}

/// The report of the leader of the highest term any member names, if it answered;
/// else the highest-term report that names some leader.
fn leader_report(rows: &[Row]) -> Option<&StatusReport> {
    let reports = rows.iter().filter_map(|r| r.report.as_ref());
    let named = reports.filter(|r| r.leader.is_some());
    let best = named.max_by_key(|r| r.term)?;
    let leader_id = best.leader.as_ref().map(|(id, _)| *id);
    rows.iter()
        .filter_map(|r| r.report.as_ref())
        .find(|r| Some(r.id) == leader_id && r.role == "leader")
        .or(Some(best))
}

/// A row's values, in [`KEYS`] order; `None` for an empty cell (unreachable).
fn values(row: &Row, leader: Option<&StatusReport>) -> [Option<String>; 11] {
    let id = row.id.map(|id| id.to_string());
    let Some(r) = &row.report else {
        let mut cells: [Option<String>; 11] = Default::default();
        cells[0] = id;
        cells[1] = Some(row.addr.clone());
        cells[2] = Some("unreachable".to_string());
        return cells;
    };
    let lag = leader
        .filter(|l| l.role == "leader")
        .map(|l| l.commit_index.saturating_sub(r.applied_index));
    let lag = if r.role == "leader" { Some(0) } else { lag };
    let alarm = if r.alarm.is_empty() { "none" } else { &r.alarm };
    [
        id,
        Some(row.addr.clone()),
        Some(r.role.clone()),
        Some(r.term.to_string()),
        Some(
            r.leader
                .as_ref()
                .map_or("none".to_string(), |(id, _)| id.to_string()),
        ),
        Some(r.commit_index.to_string()),
        Some(r.applied_index.to_string()),
        lag.map(|l| l.to_string()),
        Some(r.snapshot_index.to_string()),
        Some(r.data_bytes.to_string()),
        Some(alarm.to_string()),
    ]
}

/// An aligned table with a header line.
fn to_table(rows: &[Row], leader: Option<&StatusReport>) -> String {
    let header: Vec<String> = KEYS.iter().map(|k| k.to_uppercase()).collect();
    let mut lines = vec![header];
    for row in rows {
        lines.push(values(row, leader).map(Option::unwrap_or_default).to_vec());
    }
    let mut widths = [0usize; 11];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `key: value` lines per row, rows separated by a blank line.
fn to_blocks(rows: &[Row], leader: Option<&StatusReport>) -> String {
    let blocks: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells = values(row, leader);
            KEYS.iter()
                .zip(cells)
                .map(|(k, v)| format!("{k}: {}\n", v.unwrap_or_default()))
                .collect()
        })
        .collect();
    blocks.join("\n")
}

/// A JSON array of objects with [`KEYS`]: numbers as numbers, the rest as strings, an
/// empty cell as `null`.
fn to_json(rows: &[Row], leader: Option<&StatusReport>) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|row| {
            let fields: Vec<String> = KEYS
                .iter()
                .zip(values(row, leader))
                .map(|(key, value)| format!("\"{key}\":{}", json_value(key, value)))
                .collect();
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    format!("[{}]\n", objects.join(","))
}

/// One JSON value: `null`, a number for the numeric keys, else a string.
fn json_value(key: &str, value: Option<String>) -> String {
    const TEXT: [&str; 4] = ["addr", "role", "leader", "alarm"];
    match value {
        None => "null".to_string(),
        Some(v) if TEXT.contains(&key) => json_string(&v),
        Some(v) => v,
    }
}

/// `s` as a JSON string literal, with `"`, `\` and control characters escaped.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
