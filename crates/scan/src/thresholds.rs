//! When a container's numbers are a problem: more zombies, more processes stuck in `D`, a
//! larger share of `pids.max` in use than the operator allows, or processes an exited
//! container left behind.

use crate::report::{ContainerReport, NodeReport};

/// The most a container may have before it is a problem (each limit is inclusive: a
/// container at the limit is fine, one above it is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Zombies per container. A few zombies come and go in healthy containers; ten that
    /// stay (the scan runs every interval) mean a parent that does not reap.
    pub max_zombies: usize,
    /// Processes per container that stay in `D` across the recheck. Zero: any process stuck
    /// in uninterruptible sleep is worth a look (it cannot be killed).
    pub max_d_state: usize,
    /// Percent of `pids.max` in use; above it, forks are about to fail.
    pub max_pids_percent: u8,
    /// Processes per exited container still alive across the recheck. Zero: an exited
    /// container should hold none; one that does keeps its pod in Terminating (they are
    /// unkillable, or its runtime does not kill what a main process leaves behind).
    pub max_left_after_exit: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_zombies: 10,
            max_d_state: 0,
            max_pids_percent: 90,
            max_left_after_exit: 0,
        }
    }
}

/// One limit a container is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Zombies {
        count: usize,
        limit: usize,
    },
    /// Processes in `D` at both looks.
    Blocked {
        count: usize,
        limit: usize,
    },
    /// `percent` is `current * 100 / max`, rounded down.
    Pids {
        current: u64,
        max: u64,
        percent: u64,
        limit: u8,
    },
    /// Processes alive in an exited container at both looks.
    LeftAfterExit {
        count: usize,
        limit: usize,
    },
}

impl Finding {
    /// A stable name for the kind of finding (the JSON `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Zombies { .. } => "zombies",
            Finding::Blocked { .. } => "d_state",
            Finding::Pids { .. } => "pids",
            Finding::LeftAfterExit { .. } => "left_after_exit",
        }
    }

    /// How much the value is over its limit, to order findings of one kind.
    fn magnitude(&self) -> u64 {
        match *self {
            Finding::Zombies { count, .. }
            | Finding::Blocked { count, .. }
            | Finding::LeftAfterExit { count, .. } => count as u64,
            Finding::Pids { percent, .. } => percent,
        }
    }

    /// A pod held in Terminating first (the most urgent), then zombies (what this tool is
    /// about), then stuck processes, then pids.
    fn rank(&self) -> u8 {
        match self {
            Finding::LeftAfterExit { .. } => 0,
            Finding::Zombies { .. } => 1,
            Finding::Blocked { .. } => 2,
            Finding::Pids { .. } => 3,
        }
    }
}

/// A container over a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem<'a> {
    pub container: &'a ContainerReport,
    pub finding: Finding,
}

impl Problem<'_> {
    /// `shop/web-1/app 12 zombies of sleep`: the container and what is wrong with it, short
    /// enough for NPD's message.
    pub fn summary(&self) -> String {
        let container = self.container;
        let path = container.identity.path();
        match self.finding {
            Finding::Zombies { count, .. } => match container.worst_parent() {
                Some(parent) => {
                    let comm = parent.comm.as_deref().unwrap_or("?");
                    format!("{path} {} of {comm}", counted(count, "zombie"))
                }
                None => format!("{path} {}", counted(count, "zombie")),
            },
            Finding::Blocked { count, .. } => {
                let wchan = container
                    .blocked
                    .iter()
                    .find(|process| process.persisting && !process.wchan.is_empty())
                    .map(|process| format!(" at {}", process.wchan))
                    .unwrap_or_default();
                format!("{path} {count} in D{wchan}")
            }
            Finding::Pids { percent, .. } => format!("{path} pids {percent}%"),
            Finding::LeftAfterExit { count, .. } => {
                let first = container.left.iter().find(|process| process.persisting);
                let how = first
                    .map(|process| {
                        let wchan = if process.wchan.is_empty() {
                            String::new()
                        } else {
                            format!(" at {}", process.wchan)
                        };
                        format!(": {} in {}{wchan}", process.comm, process.state)
                    })
                    .unwrap_or_default();
                format!("{path} exited, {} left{how}", counted(count, "process"))
            }
        }
    }

    /// The limit that was exceeded, as the flag sets it.
    pub fn limit(&self) -> u64 {
        match self.finding {
            Finding::Zombies { limit, .. }
            | Finding::Blocked { limit, .. }
            | Finding::LeftAfterExit { limit, .. } => limit as u64,
            Finding::Pids { limit, .. } => u64::from(limit),
        }
    }

    /// The number that is over the limit (for pids, the percent in use).
    pub fn value(&self) -> u64 {
        self.finding.magnitude()
    }
}

/// `1 zombie`, `5 zombies`.
pub(crate) fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Every limit every container is over, worst first: by kind (zombies, `D`, pids), then by
/// how large the number is, then by container.
pub fn problems<'a>(report: &'a NodeReport, thresholds: &Thresholds) -> Vec<Problem<'a>> {
    let mut found: Vec<Problem<'a>> = report
        .containers
        .iter()
        .flat_map(|container| {
            findings(container, thresholds)
                .into_iter()
                .map(move |finding| Problem { container, finding })
        })
        .collect();
    found.sort_by(|a, b| {
        a.finding
            .rank()
            .cmp(&b.finding.rank())
            .then(b.finding.magnitude().cmp(&a.finding.magnitude()))
            .then(a.container.identity.cmp(&b.container.identity))
    });
    found
}

fn findings(container: &ContainerReport, thresholds: &Thresholds) -> Vec<Finding> {
    let mut found = Vec::new();
    let left = container.persisting_left();
    if left > thresholds.max_left_after_exit {
        found.push(Finding::LeftAfterExit {
            count: left,
            limit: thresholds.max_left_after_exit,
        });
    }
    if container.zombies > thresholds.max_zombies {
        found.push(Finding::Zombies {
            count: container.zombies,
            limit: thresholds.max_zombies,
        });
    }
    let blocked = container.persisting_blocked();
    if blocked > thresholds.max_d_state {
        found.push(Finding::Blocked {
            count: blocked,
            limit: thresholds.max_d_state,
        });
    }
    if let Some(usage) = container.pids {
        // Integer arithmetic: "above P percent" is exact, with no rounding at the boundary.
        let limit = u64::from(thresholds.max_pids_percent);
        if let Some(max) = usage.max.filter(|max| *max > 0) {
            if usage.current.saturating_mul(100) > max.saturating_mul(limit) {
                found.push(Finding::Pids {
                    current: usage.current,
                    max,
                    percent: usage.current.saturating_mul(100) / max,
                    limit: thresholds.max_pids_percent,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{container, sample_node};
    use undertaker_cgroups::PidsUsage;

    #[test]
    fn a_container_at_a_limit_is_fine_and_one_above_is_not() {
        let mut at_limit = container("a", 10, 0);
        at_limit.pids = Some(PidsUsage {
            current: 90,
            max: Some(100),
        });
        let mut above = container("b", 11, 0);
        above.pids = Some(PidsUsage {
            current: 91,
            max: Some(100),
        });
        let report = NodeReport {
            containers: vec![at_limit, above],
            skipped: Vec::new(),
        };
        let found = problems(&report, &Thresholds::default());
        let summary: Vec<(&str, &str)> = found
            .iter()
            .map(|p| (p.container.identity.container.as_str(), p.finding.kind()))
            .collect();
        assert_eq!(summary, vec![("b", "zombies"), ("b", "pids")]);
        assert_eq!(
            found[1].finding,
            Finding::Pids {
                current: 91,
                max: 100,
                percent: 91,
                limit: 90
            }
        );
    }

    #[test]
    fn unlimited_pids_and_passing_d_states_are_no_problem() {
        let mut unlimited = container("a", 0, 0);
        unlimited.pids = Some(PidsUsage {
            current: 100_000,
            max: None,
        });
        let mut passing = container("b", 0, 1);
        passing.blocked[0].persisting = false;
        let report = NodeReport {
            containers: vec![unlimited, passing],
            skipped: Vec::new(),
        };
        assert!(problems(&report, &Thresholds::default()).is_empty());
    }

    #[test]
    fn problems_come_worst_first() {
        let report = sample_node();
        let thresholds = Thresholds {
            max_zombies: 2,
            max_d_state: 0,
            max_pids_percent: 50,
            ..Thresholds::default()
        };
        let found: Vec<(String, &str, u64)> = problems(&report, &thresholds)
            .iter()
            .map(|p| {
                (
                    p.container.identity.path(),
                    p.finding.kind(),
                    p.finding.magnitude(),
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("shop/worker-1/queue".to_string(), "zombies", 40),
                ("shop/web-1/app".to_string(), "zombies", 5),
                ("shop/worker-1/queue".to_string(), "d_state", 1),
                ("shop/worker-1/queue".to_string(), "pids", 80),
            ]
        );
    }

    #[test]
    fn higher_limits_clear_every_problem() {
        let thresholds = Thresholds {
            max_zombies: 40,
            max_d_state: 1,
            max_pids_percent: 80,
            ..Thresholds::default()
        };
        assert!(problems(&sample_node(), &thresholds).is_empty());
    }

    #[test]
    fn an_exited_container_holding_processes_comes_first_and_says_what_holds_it() {
        let mut report = sample_node();
        report
            .containers
            .push(crate::fixture::exited_container("stuck"));
        let found = problems(&report, &Thresholds::default());
        assert_eq!(
            found[0].finding,
            Finding::LeftAfterExit { count: 1, limit: 0 }
        );
        assert_eq!(found[0].finding.kind(), "left_after_exit");
        assert_eq!(
            found[0].summary(),
            "default/pod-stuck/stuck exited, 1 process left: sleep in D at do_freezer_trap"
        );
        // The dying worker does not count, and an exited container is never "in D".
        assert!(found[1..]
            .iter()
            .all(|p| p.container.identity.container != "stuck"));
        let relaxed = Thresholds {
            max_left_after_exit: 1,
            ..Thresholds::default()
        };
        assert!(problems(&report, &relaxed)
            .iter()
            .all(|p| p.finding.kind() != "left_after_exit"));
    }
}
