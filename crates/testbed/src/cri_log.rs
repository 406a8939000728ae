//! Container log files in the CRI format: `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`,
//! one line per write chunk; `P` marks a partial line continued by the next entry.

use std::path::Path;

use crate::error::{Result, TestbedError};

/// Which stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One entry of a CRI log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: String,
    pub stream: LogStream,
    /// `false` for a `P` (partial) entry continued by the next one.
    pub complete: bool,
    pub text: String,
}

/// Parses CRI log text; malformed lines are errors naming the line.
pub fn parse_cri_log(text: &str) -> std::result::Result<Vec<LogLine>, String> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (Some(timestamp), Some(stream), Some(tag)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("not a CRI log line: {line:?}"));
            };
            let stream = match stream {
                "stdout" => LogStream::Stdout,
                "stderr" => LogStream::Stderr,
                other => return Err(format!("unknown stream {other:?} in {line:?}")),
            };
            let complete = match tag {
                "F" => true,
                "P" => false,
                other => return Err(format!("unknown tag {other:?} in {line:?}")),
            };
            Ok(LogLine {
                timestamp: timestamp.to_string(),
                stream,
                complete,
                text: parts.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Reads and parses the CRI log file at `path` (empty if it does not exist yet).
pub fn read_cri_log(path: &Path) -> Result<Vec<LogLine>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(TestbedError::io("read", path)(error)),
    };
    parse_cri_log(&text).map_err(|reason| TestbedError::Unexpected {
        call: "container log",
        reason: format!("{}: {reason}", path.display()),
    })
}

/// The complete lines of `stream`, partial entries joined.
pub fn stream_lines(lines: &[LogLine], stream: LogStream) -> Vec<String> {
    let mut joined = Vec::new();
    let mut pending = String::new();
    for line in lines.iter().filter(|line| line.stream == stream) {
        pending.push_str(&line.text);
        if line.complete {
            joined.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        joined.push(pending);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "2024-01-02T03:04:05.123456789Z stdout F hello world\n\
                          2024-01-02T03:04:05.2Z stderr P to \n\
                          2024-01-02T03:04:05.3Z stdout F \n\
                          2024-01-02T03:04:05.4Z stderr F stderr\n";

    #[test]
    fn lines_are_split_into_time_stream_tag_and_text() {
        let lines = parse_cri_log(SAMPLE).expect("valid log");
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].timestamp, "2024-01-02T03:04:05.123456789Z");
        assert_eq!(lines[0].stream, LogStream::Stdout);
        assert_eq!(lines[0].text, "hello world");
        assert!(!lines[1].complete);
        assert_eq!(lines[2].text, "", "an empty line keeps its empty text");
    }

    #[test]
    fn partial_entries_join_per_stream() {
        let lines = parse_cri_log(SAMPLE).expect("valid log");
        assert_eq!(stream_lines(&lines, LogStream::Stdout), ["hello world", ""]);
        assert_eq!(stream_lines(&lines, LogStream::Stderr), ["to stderr"]);
    }

    #[test]
    fn malformed_lines_are_rejected() {
        assert!(parse_cri_log("2024 stdin F x\n").is_err());
        assert!(parse_cri_log("2024 stdout X x\n").is_err());
        assert!(parse_cri_log("just-one-field\n").is_err());
    }
}
