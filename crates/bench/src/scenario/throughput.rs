//! Stdout throughput through CRI: a container writes `--throughput-mb` MB of zeros to stdout
//! as fast as `dd` can, timed from StartContainer until containerd's CRI log file holds all of
//! it. The shim copies the container's stdout pipe to containerd's FIFO; containerd reads it,
//! splits it into lines of at most 16 KiB and writes each with a timestamp to the log.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use undertaker_testbed::Testbed;

use super::{wait_until_every, with_pod};
use crate::handler::{Handler, PerHandler};
use crate::options::Options;
use crate::report::{Goal, Measurement, Unit};

/// The line the container prints after the data: once the log ends with it, it holds all.
const DONE: &str = "throughput-done";

/// Bytes `dd` writes at once (CRI's 16 KiB lines are cut from it).
const BLOCK: usize = 100_000;

/// How often the end of the log is read.
const POLL: Duration = Duration::from_millis(10);

/// How far from its end the log is read for the marker.
const TAIL: u64 = 4096;

pub async fn measure(testbed: &Testbed, options: &Options) -> Result<Option<Measurement>> {
    if options.throughput_runs == 0 || options.throughput_mb == 0 {
        return Ok(None);
    }
    let mb = options.throughput_mb;
    let mut rates = PerHandler::default();
    for round in 0..options.throughput_runs {
        for handler in Handler::turns(round) {
            eprintln!(
                "{mb} MB to stdout under {} (run {} of {}) ...",
                handler.name(),
                round + 1,
                options.throughput_runs
            );
            let seconds = write_through(testbed, handler, mb).await?;
            let rate = mb as f64 / seconds;
            eprintln!("  {seconds:.1} s, {rate:.1} MB/s");
            rates.push(handler, rate);
        }
    }
    Ok(Some(Measurement::new(
        "stdout_throughput",
        format!(
            "stdout through CRI: {mb} MB written by `dd`, from StartContainer until the CRI log holds it"
        ),
        format!("stdout throughput, {mb} MB"),
        Unit::MbPerSecond,
        Goal::RatioAtLeast(1.0),
        rates,
    )))
}

/// One container writing `mb` MB; the seconds until its log held them.
async fn write_through(testbed: &Testbed, handler: Handler, mb: usize) -> Result<f64> {
    let pod = testbed
        .pod("bench-throughput", handler.name())
        .run()
        .await?;
    let blocks = mb * 1_000_000 / BLOCK;
    let script =
        format!("dd if=/dev/zero bs={BLOCK} count={blocks} 2>/dev/null; echo; echo {DONE}");
    let result = with_pod(&pod, async {
        let container = pod.container("writer").shell(&script).create().await?;
        let log = container.log_path().to_path_buf();
        let started = Instant::now();
        container.start().await?;
        // At 1 MB/s, the slowest seen here was 9.
        let timeout = Duration::from_secs(60 + mb as u64);
        wait_until_every("the CRI log to hold all output", timeout, POLL, || {
            let done = log_ends_with(&log, DONE);
            async move { Ok(done) }
        })
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        // Removing the pod while containerd still handles the exit raced once here
        // (StopPodSandbox: "ttrpc: closed"): let the exit land first.
        container.wait_exited(Duration::from_secs(60)).await?;
        let written = stdout_bytes(&log)?;
        let expected = (blocks * BLOCK) as u64;
        if written < expected {
            bail!(
                "{} holds {written} bytes of stdout, {expected} were written",
                log.display()
            );
        }
        Ok((seconds, log))
    })
    .await;
    let (seconds, log) = result?;
    // Hundreds of MB: not kept until the testbed goes.
    std::fs::remove_file(&log).with_context(|| format!("remove {}", log.display()))?;
    Ok(seconds)
}

/// Whether the last bytes of the file at `path` hold `marker`.
fn log_ends_with(path: &Path, marker: &str) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(length) = file.seek(SeekFrom::End(0)) else {
        return false;
    };
    let mut tail = Vec::new();
    let read = file
        .seek(SeekFrom::Start(length.saturating_sub(TAIL)))
        .and_then(|_| file.read_to_end(&mut tail));
    read.is_ok() && contains(&tail, marker.as_bytes())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The bytes of stdout a CRI log file holds, streamed (it may be hundreds of MB).
fn stdout_bytes(path: &Path) -> Result<u64> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    count_stdout_bytes(BufReader::new(file)).with_context(|| format!("read {}", path.display()))
}

/// The bytes of stdout in a CRI log: each line is `<timestamp> <stream> <tag> <content>`,
/// tag `P` for part of a line (no newline in the output) and `F` for its end (one newline).
fn count_stdout_bytes(mut log: impl BufRead) -> Result<u64> {
    let mut total = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if log.read_until(b'\n', &mut line)? == 0 {
            return Ok(total);
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let mut fields = text.splitn(4, |&byte| byte == b' ');
        let (Some(_timestamp), Some(stream), Some(tag)) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!("not a CRI log line: {:?}", String::from_utf8_lossy(text));
        };
        let content = fields.next().unwrap_or_default();
        if stream != b"stdout" {
            continue;
        }
        total += content.len() as u64;
        match tag {
            b"F" => total += 1,
            b"P" => {}
            other => bail!("CRI log tag {:?}", String::from_utf8_lossy(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-12-01T23:00:16.123456789Z";

    #[test]
    fn partial_lines_add_their_bytes_and_full_lines_a_newline() {
        let log = format!(
            "{TS} stdout P \0\0\0\0\n{TS} stdout P \0\0\n{TS} stdout F \n{TS} stdout F {DONE}\n"
        );
        // 6 zeros, the newline `echo` ended them with, the marker and its newline.
        let expected = 6 + 1 + DONE.len() as u64 + 1;
        assert_eq!(count_stdout_bytes(log.as_bytes()).expect("count"), expected);
    }

    #[test]
    fn stderr_is_not_counted_and_spaces_in_content_are() {
        let log = format!("{TS} stderr F oops\n{TS} stdout F a b  c\n");
        assert_eq!(count_stdout_bytes(log.as_bytes()).expect("count"), 7);
    }

    #[test]
    fn broken_lines_are_errors() {
        assert!(count_stdout_bytes(&b"garbage\n"[..]).is_err());
        assert!(count_stdout_bytes(format!("{TS} stdout X y\n").as_bytes()).is_err());
        assert_eq!(count_stdout_bytes(&b""[..]).expect("empty"), 0);
    }

    #[test]
    fn the_marker_is_found_in_the_tail_only() {
        let dir = std::env::temp_dir().join(format!("bench-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log");
        let mut text = format!("{TS} stdout F {DONE}\n");
        text.push_str(&"x".repeat(2 * TAIL as usize));
        std::fs::write(&path, &text).expect("write");
        assert!(!log_ends_with(&path, DONE), "the marker is too far back");
        text.push_str(&format!("\n{TS} stdout F {DONE}\n"));
        std::fs::write(&path, &text).expect("write");
        assert!(log_ends_with(&path, DONE));
        assert!(!log_ends_with(&dir.join("missing"), DONE));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
