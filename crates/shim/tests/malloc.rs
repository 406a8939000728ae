//! The shim's runtime keeps an idle shim's heap small: its threads share one malloc arena,
//! and what a burst of work on the blocking pool freed goes back to the kernel once the
//! pool's threads end. One test in this binary: it counts the whole process's arenas and
//! resident memory, which other tests running beside it would change.

use std::path::Path;
use std::time::{Duration, Instant};

use undertaker_shim::{tokio_runtime, BLOCKING_THREAD_KEEP_ALIVE};

/// 64 MiB: glibc's `HEAP_MAX_SIZE` on 64-bit, the size and alignment of every arena but the
/// main one (a read-write part, then the reserved rest without access).
const ARENA_SPAN: u64 = 64 << 20;

/// The arenas glibc created besides the main one, found in /proc/self/maps: an anonymous
/// read-write mapping at a 64 MiB boundary followed by an inaccessible one ending 64 MiB
/// after it. (A thread's stack has its guard below it, never above.)
fn arenas() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let mappings: Vec<(u64, u64, &str, bool)> = maps
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let perms = fields.next()?;
            let anonymous = fields.nth(3).is_none();
            Some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
                perms,
                anonymous,
            ))
        })
        .collect();
    mappings
        .windows(2)
        .filter(|pair| {
            let ((start, end, perms, anon), (next_start, next_end, next_perms, next_anon)) =
                (pair[0], pair[1]);
            anon && next_anon
                && perms == "rw-p"
                && next_perms == "---p"
                && start % ARENA_SPAN == 0
                && next_start == end
                && next_end == start + ARENA_SPAN
        })
        .count()
}

fn rss_anon_kb() -> u64 {
    undertaker_cgroups::procfs::status(Path::new("/proc"), std::process::id() as i32)
        .expect("read /proc/self/status")
        .and_then(|status| status.number("RssAnon"))
        .expect("RssAnon in /proc/self/status")
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// 20 MB in 2 KB blocks, all freed but the last (which keeps the heap's top in use, so
/// malloc's own trimming of the top cannot give the rest back).
fn fragment_the_heap() -> Vec<u8> {
    let mut blocks: Vec<Vec<u8>> = (0..10_000).map(|_| vec![0x5a; 2048]).collect();
    blocks.pop().expect("a block")
}

#[test]
fn threads_share_one_arena_and_freed_heap_goes_back_once_the_pool_ends() {
    let runtime = tokio_runtime().expect("runtime");
    let (arenas_before, threads_before, rss_before) = (arenas(), threads(), rss_anon_kb());

    let kept = runtime.block_on(async {
        let others: Vec<_> = (0..4)
            .map(|_| tokio::task::spawn_blocking(|| drop(std::hint::black_box(vec![1u8; 4096]))))
            .collect();
        let kept = tokio::task::spawn_blocking(fragment_the_heap)
            .await
            .unwrap();
        for job in others {
            job.await.unwrap();
        }
        kept
    });
    assert!(threads() > threads_before, "the jobs ran on pool threads");
    assert!(
        arenas() <= arenas_before,
        "the pool's threads made malloc arenas of their own: {} before, {} after",
        arenas_before,
        arenas()
    );

    // Once the pool's threads have ended, the 20 MB freed is no longer resident.
    let done = Instant::now();
    let deadline = BLOCKING_THREAD_KEEP_ALIVE + Duration::from_secs(9);
    let slack_kb = 4 * 1024;
    loop {
        let rss = rss_anon_kb();
        if threads() <= threads_before && rss < rss_before + slack_kb {
            break;
        }
        assert!(
            done.elapsed() < deadline,
            "{:?} after the last job: {} pool threads alive, RssAnon {} kB (before: {} kB)",
            done.elapsed(),
            threads().saturating_sub(threads_before),
            rss,
            rss_before
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(kept.len(), 2048);
}
