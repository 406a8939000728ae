//! The units samples are kept and shown in.

use serde::Serialize;

/// The unit samples are kept and shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// MiB (memory read in kB from /proc, divided by 1024).
    Mib,
    /// kB as /proc reports memory (1024 bytes).
    Kb,
    Milliseconds,
    Count,
    /// Megabytes (10^6 bytes) per second.
    MbPerSecond,
    /// Events per minute (wake-ups of an idle process).
    PerMinute,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Mib => "MiB",
            Unit::Kb => "kB",
            Unit::Milliseconds => "ms",
            Unit::Count => "count",
            Unit::MbPerSecond => "MB/s",
            Unit::PerMinute => "/min",
        }
    }

    /// A value with as many decimals as its size deserves.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Count | Unit::Kb => format!("{value:.0}"),
            Unit::Mib | Unit::MbPerSecond | Unit::PerMinute => format!("{value:.1}"),
            Unit::Milliseconds if value.abs() < 10.0 => format!("{value:.2}"),
            Unit::Milliseconds if value.abs() < 100.0 => format!("{value:.1}"),
            Unit::Milliseconds => format!("{value:.0}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_get_decimals_by_unit_and_size() {
        assert_eq!(Unit::Count.format(5001.0), "5001");
        assert_eq!(Unit::Kb.format(-348.0), "-348");
        assert_eq!(Unit::Mib.format(6.4567), "6.5");
        assert_eq!(Unit::MbPerSecond.format(9.46), "9.5");
        assert_eq!(Unit::PerMinute.format(0.0), "0.0");
        assert_eq!(Unit::Milliseconds.format(4.5678), "4.57");
        assert_eq!(Unit::Milliseconds.format(-4.5678), "-4.57");
        assert_eq!(Unit::Milliseconds.format(31.4159), "31.4");
        assert_eq!(Unit::Milliseconds.format(10_031.6), "10032");
    }

    #[test]
    fn units_serialize_in_snake_case() {
        let json = serde_json::to_value([Unit::Mib, Unit::MbPerSecond]).expect("json");
        assert_eq!(json, serde_json::json!(["mib", "mb_per_second"]));
    }
}
