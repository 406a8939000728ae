//! The shim's runtime ends its blocking pool's threads soon after their last job, so an idle
//! shim is one thread again (tokio's default keeps them 10 s and wakes each up to end it,
//! which the benchmark's idle wake-ups row counted).

use std::time::{Duration, Instant};

use undertaker_shim::{tokio_runtime, BLOCKING_THREAD_KEEP_ALIVE};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn blocking_pool_threads_end_soon_after_their_last_job() {
    let runtime = tokio_runtime().expect("runtime");
    let before = threads();
    runtime.block_on(async {
        let jobs = (0..4)
            .map(|_| tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50))));
        for job in jobs.collect::<Vec<_>>() {
            job.await.unwrap();
        }
    });
    assert!(threads() > before, "the jobs ran on pool threads");
    let done = Instant::now();
    // Well under tokio's default of 10 s, with room for a loaded machine.
    let deadline = BLOCKING_THREAD_KEEP_ALIVE + Duration::from_secs(5);
    assert!(deadline < Duration::from_secs(10));
    while threads() > before {
        assert!(
            done.elapsed() < deadline,
            "{} pool threads still alive {:?} after their last job",
            threads() - before,
            done.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
