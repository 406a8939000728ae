//! Polling with a short, growing pause, never past a deadline: how this crate waits for the
//! kernel (a freeze to complete, a cgroup to empty) without ever hanging.

use std::time::{Duration, Instant};

const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

pub(crate) struct Backoff {
    deadline: Instant,
    pause: Duration,
    longest: Duration,
}

impl Backoff {
    pub fn until(deadline: Instant) -> Self {
        Backoff::capped(deadline, LONGEST_PAUSE)
    }

    /// Pauses that grow no longer than `longest`.
    pub fn capped(deadline: Instant, longest: Duration) -> Self {
        Backoff {
            deadline,
            pause: FIRST_PAUSE,
            longest,
        }
    }

    /// Sleeps for the next pause, cut short at the deadline. `false` once the deadline has
    /// passed: the caller looks one last time and gives up.
    pub fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        std::thread::sleep(self.pause.min(self.deadline - now));
        self.pause = (self.pause * 2).min(self.longest);
        true
    }
}

/// Calls `done` until it says yes or the deadline passes; returns its last answer.
pub(crate) fn poll_until<E>(
    deadline: Instant,
    mut done: impl FnMut() -> Result<bool, E>,
) -> Result<bool, E> {
    let mut backoff = Backoff::until(deadline);
    loop {
        if done()? {
            return Ok(true);
        }
        if !backoff.pause() {
            return done();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_as_soon_as_done() {
        let mut calls = 0;
        let done = poll_until::<()>(Instant::now() + Duration::from_secs(60), || {
            calls += 1;
            Ok(calls == 3)
        });
        assert_eq!(done, Ok(true));
        assert_eq!(calls, 3);
    }

    #[test]
    fn gives_up_at_the_deadline_after_a_last_look() {
        let mut calls = 0;
        let done = poll_until::<()>(Instant::now(), || {
            calls += 1;
            Ok(false)
        });
        assert_eq!(done, Ok(false));
        assert_eq!(calls, 2);
    }
}
