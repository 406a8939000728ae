//! The init's command line and environment: what to run and how.
//!
//! `undertaker-init [--scope child|group|all] [--drain-timeout 2s] [--report-fd N] [--subreaper]
//! [-v]... [--] workload [args...]`, with `UNDERTAKER_SCOPE`, `UNDERTAKER_DRAIN_TIMEOUT`,
//! `UNDERTAKER_REPORT_FD` and `UNDERTAKER_VERBOSITY` as defaults that options override.

use undertaker_report::Scope;

/// Prefix of the init's own environment variables, all removed from the workload's environment.
pub const ENV_PREFIX: &[u8] = b"UNDERTAKER_";

pub const DEFAULT_DRAIN_MS: u64 = 2000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub scope: Scope,
    pub drain_ms: u64,
    pub report_fd: Option<i32>,
    /// Subreaper mode even as PID 1: signals and the final cleanup reach only our descendants
    /// (automatic when not PID 1).
    pub force_subreaper: bool,
    /// 0: errors only; 1: what happens to the workload; 2: every reaped process and signal.
    pub verbosity: u8,
    /// Index in argv of the workload's program.
    pub workload: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run(Config),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError<'a> {
    UnknownOption(&'a [u8]),
    MissingValue(&'static str),
    BadValue {
        option: &'static str,
        value: &'a [u8],
    },
    NoWorkload,
}

impl UsageError<'_> {
    /// The parts of the message, to be written one after the other.
    pub fn message(&self) -> [&[u8]; 4] {
        match self {
            UsageError::UnknownOption(option) => [b"unknown option '", option, b"'", b""],
            UsageError::MissingValue(option) => [option.as_bytes(), b" needs a value", b"", b""],
            UsageError::BadValue { option, value } => {
                [b"bad value for ", option.as_bytes(), b": ", value]
            }
            UsageError::NoWorkload => [
                b"no command to run (usage: undertaker-init [options] [--] command [args...])",
                b"",
                b"",
                b"",
            ],
        }
    }
}

/// One setting, as an option and as an environment variable.
struct Setting {
    option: &'static str,
    env: &'static [u8],
    apply: fn(&mut Config, &[u8]) -> bool,
}

const SETTINGS: &[Setting] = &[
    Setting {
        option: "--scope",
        env: b"UNDERTAKER_SCOPE",
        apply: |config, value| {
            Scope::from_name(value)
                .map(|scope| config.scope = scope)
                .is_some()
        },
    },
    Setting {
        option: "--drain-timeout",
        env: b"UNDERTAKER_DRAIN_TIMEOUT",
        apply: |config, value| {
            parse_duration_ms(value)
                .map(|ms| config.drain_ms = ms)
                .is_some()
        },
    },
    Setting {
        option: "--report-fd",
        env: b"UNDERTAKER_REPORT_FD",
        // 0, 1 and 2 belong to the workload; the init makes the report fd non-blocking.
        apply: |config, value| {
            parse_number(value)
                .filter(|fd| (3..=i32::MAX as u64).contains(fd))
                .map(|fd| config.report_fd = Some(fd as i32))
                .is_some()
        },
    },
    Setting {
        option: "--verbosity",
        env: b"UNDERTAKER_VERBOSITY",
        apply: |config, value| {
            parse_number(value)
                .filter(|level| *level <= 3)
                .map(|level| config.verbosity = level as u8)
                .is_some()
        },
    },
];

/// Parses `args` (argv without argv[0]) with `env` looking up environment variables.
pub fn parse<'a, F>(args: &[&'a [u8]], env: F) -> Result<Action, UsageError<'a>>
where
    F: Fn(&[u8]) -> Option<&'a [u8]>,
{
    let mut config = Config {
        scope: Scope::Child,
        drain_ms: DEFAULT_DRAIN_MS,
        report_fd: None,
        force_subreaper: false,
        verbosity: 0,
        workload: 0,
    };
    for setting in SETTINGS {
        if let Some(value) = env(setting.env) {
            if !(setting.apply)(&mut config, value) {
                let option = core::str::from_utf8(setting.env).unwrap_or(setting.option);
                return Err(UsageError::BadValue { option, value });
            }
        }
    }
    let mut index = 0;
    while index < args.len() {
        let arg = args[index];
        index += 1;
        match arg {
            b"--" => break,
            b"-h" | b"--help" => return Ok(Action::Help),
            b"-V" | b"--version" => return Ok(Action::Version),
            b"--subreaper" => config.force_subreaper = true,
            b"-v" | b"--verbose" => config.verbosity = config.verbosity.saturating_add(1),
            _ if arg.len() > 2 && arg.starts_with(b"-v") && arg[1..].iter().all(|&b| b == b'v') => {
                config.verbosity = config.verbosity.saturating_add((arg.len() - 1) as u8);
            }
            _ if arg.starts_with(b"-") => {
                let (name, inline) = match arg.iter().position(|&b| b == b'=') {
                    Some(at) => (&arg[..at], Some(&arg[at + 1..])),
                    None => (arg, None),
                };
                let setting = SETTINGS
                    .iter()
                    .find(|setting| setting.option.as_bytes() == name)
                    .ok_or(UsageError::UnknownOption(arg))?;
                let value = match inline {
                    Some(value) => value,
                    None => {
                        let value = args
                            .get(index)
                            .ok_or(UsageError::MissingValue(setting.option))?;
                        index += 1;
                        value
                    }
                };
                if !(setting.apply)(&mut config, value) {
                    return Err(UsageError::BadValue {
                        option: setting.option,
                        value,
                    });
                }
            }
            // The first argument that is not an option starts the workload.
            _ => {
                index -= 1;
                break;
            }
        }
    }
    if index >= args.len() {
        return Err(UsageError::NoWorkload);
    }
    // +1: argv[0] is not in `args`.
    config.workload = index + 1;
    Ok(Action::Run(config))
}

fn parse_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |total, &digit| {
        digit
            .is_ascii_digit()
            .then(|| total * 10 + u64::from(digit - b'0'))
    })
}

/// A duration like `500ms`, `2s`, `1m`, `1h`, or a sum of them (`1m30s`), in milliseconds.
/// A bare `0` is allowed; any other number needs a unit.
pub fn parse_duration_ms(text: &[u8]) -> Option<u64> {
    if text == b"0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let number = parse_number(&rest[..digits])?;
        rest = &rest[digits..];
        let letters = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit_ms = match &rest[..letters] {
            b"ms" => 1,
            b"s" => 1000,
            b"m" => 60_000,
            b"h" => 3_600_000,
            _ => return None,
        };
        rest = &rest[letters..];
        total = total.checked_add(number.checked_mul(unit_ms)?)?;
    }
    Some(total)
}

pub const HELP: &str = "\
undertaker-init: a tiny init that runs a command, reaps every orphan and forwards signals

usage: undertaker-init [options] [--] command [args...]

options (environment variable in brackets; options win):
  --scope child|group|all  where forwarded signals go: the command, its process group, or every
                           process (PID 1) / every descendant (subreaper)   [UNDERTAKER_SCOPE]
  --drain-timeout DURATION how long leftovers get after SIGTERM before SIGKILL once the command
                           exited, e.g. 500ms, 2s, 1m; 0 kills at once
                           (default 2s)                                     [UNDERTAKER_DRAIN_TIMEOUT]
  --report-fd N            write report records to inherited fd N (>= 3)    [UNDERTAKER_REPORT_FD]
  --subreaper              be a child subreaper even as PID 1 (automatic when not PID 1)
  -v, --verbose            log to stderr; repeat for more                   [UNDERTAKER_VERBOSITY=0..3]
  -h, --help               this text
  -V, --version            the version

The init exits with the command's status: N for exit N, 128+N for signal N; 127 if the command
is not found, 126 if it cannot be run, 2 for a bad option. UNDERTAKER_* variables are removed
from the command's environment.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&'static str]) -> Result<Action, UsageError<'static>> {
        run_env(args, &[])
    }

    fn run_env(
        args: &[&'static str],
        env: &'static [(&'static str, &'static str)],
    ) -> Result<Action, UsageError<'static>> {
        let args: Vec<&'static [u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        parse(&args, |name| {
            env.iter()
                .find(|(key, _)| key.as_bytes() == name)
                .map(|(_, value)| value.as_bytes())
        })
    }

    fn config(args: &[&'static str]) -> Config {
        match run(args) {
            Ok(Action::Run(config)) => config,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_child_scope_two_seconds_no_report() {
        let config = config(&["sleep", "1"]);
        assert_eq!(config.scope, Scope::Child);
        assert_eq!(config.drain_ms, 2000);
        assert_eq!(config.report_fd, None);
        assert!(!config.force_subreaper);
        assert_eq!(config.verbosity, 0);
        assert_eq!(config.workload, 1);
    }

    #[test]
    fn options_in_both_forms_then_the_workload() {
        let config = config(&[
            "--scope",
            "group",
            "--drain-timeout=500ms",
            "--report-fd",
            "3",
            "--subreaper",
            "-vv",
            "-v",
            "--",
            "sh",
            "-c",
            "x",
        ]);
        assert_eq!(config.scope, Scope::Group);
        assert_eq!(config.drain_ms, 500);
        assert_eq!(config.report_fd, Some(3));
        assert!(config.force_subreaper);
        assert_eq!(config.verbosity, 3);
        assert_eq!(config.workload, 10);
    }

    #[test]
    fn the_first_non_option_starts_the_workload_and_its_options_are_its_own() {
        let config = config(&["-v", "ls", "--scope", "all"]);
        assert_eq!(config.workload, 2);
        assert_eq!(config.scope, Scope::Child);
        assert_eq!(config.verbosity, 1);
    }

    #[test]
    fn a_workload_may_start_with_a_dash_after_the_separator() {
        assert_eq!(config(&["--", "-weird"]).workload, 2);
    }

    #[test]
    fn environment_gives_defaults_and_options_win() {
        let env = &[
            ("UNDERTAKER_SCOPE", "all"),
            ("UNDERTAKER_DRAIN_TIMEOUT", "1m30s"),
            ("UNDERTAKER_REPORT_FD", "7"),
            ("UNDERTAKER_VERBOSITY", "2"),
        ];
        let Ok(Action::Run(config)) = run_env(&["--scope", "group", "true"], env) else {
            panic!()
        };
        assert_eq!(config.scope, Scope::Group);
        assert_eq!(config.drain_ms, 90_000);
        assert_eq!(config.report_fd, Some(7));
        assert_eq!(config.verbosity, 2);
    }

    #[test]
    fn bad_values_name_the_option_or_variable() {
        assert_eq!(
            run(&["--scope", "everyone", "true"]),
            Err(UsageError::BadValue {
                option: "--scope",
                value: b"everyone"
            })
        );
        assert_eq!(
            run(&["--drain-timeout", "5", "true"]),
            Err(UsageError::BadValue {
                option: "--drain-timeout",
                value: b"5"
            })
        );
        assert_eq!(
            run(&["--report-fd=1", "true"]),
            Err(UsageError::BadValue {
                option: "--report-fd",
                value: b"1"
            })
        );
        assert_eq!(
            run_env(&["true"], &[("UNDERTAKER_VERBOSITY", "loud")]),
            Err(UsageError::BadValue {
                option: "UNDERTAKER_VERBOSITY",
                value: b"loud"
            })
        );
        assert_eq!(
            run(&["--nope", "true"]),
            Err(UsageError::UnknownOption(b"--nope"))
        );
        assert_eq!(run(&["--scope"]), Err(UsageError::MissingValue("--scope")));
        assert_eq!(run(&["-v", "--"]), Err(UsageError::NoWorkload));
        assert_eq!(run(&[]), Err(UsageError::NoWorkload));
    }

    #[test]
    fn help_and_version_win_over_a_workload() {
        assert_eq!(run(&["--help"]), Ok(Action::Help));
        assert_eq!(run(&["-V", "true"]), Ok(Action::Version));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms(b"0"), Some(0));
        assert_eq!(parse_duration_ms(b"0s"), Some(0));
        assert_eq!(parse_duration_ms(b"500ms"), Some(500));
        assert_eq!(parse_duration_ms(b"2s"), Some(2000));
        assert_eq!(parse_duration_ms(b"1m"), Some(60_000));
        assert_eq!(parse_duration_ms(b"1h1s"), Some(3_601_000));
        for bad in [
            "",
            "5",
            "s",
            "2 s",
            "-1s",
            "1.5s",
            "2sec",
            "99999999999999999999ms",
        ] {
            assert_eq!(parse_duration_ms(bad.as_bytes()), None, "{bad}");
        }
    }
}
