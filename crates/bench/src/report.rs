//! What one benchmark row says: the samples of both handlers, their summaries, the ratio of
//! the medians (undertaker / runc), the goal and whether it was met; and the Markdown table.

use std::fmt::Write;

use serde::Serialize;

use crate::handler::PerHandler;
use crate::stats::{ratio, Summary};

/// The unit samples are kept and shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// MiB (memory read in kB from /proc, divided by 1024).
    Mib,
    Milliseconds,
    Count,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Mib => "MiB",
            Unit::Milliseconds => "ms",
            Unit::Count => "count",
        }
    }

    /// A value with as many decimals as its size deserves.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Count => format!("{value:.0}"),
            Unit::Mib => format!("{value:.1}"),
            Unit::Milliseconds if value < 10.0 => format!("{value:.2}"),
            Unit::Milliseconds if value < 100.0 => format!("{value:.1}"),
            Unit::Milliseconds => format!("{value:.0}"),
        }
    }
}

/// What undertaker should achieve relative to runc (ratio = undertaker median / runc median).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Goal {
    /// No goal; the row is for information.
    None,
    /// ratio <= value.
    RatioAtMost(f64),
    /// ratio < value.
    RatioBelow(f64),
    /// undertaker's largest sample is zero.
    UndertakerZero,
}

impl Goal {
    pub fn describe(self) -> String {
        match self {
            Goal::None => "–".to_string(),
            Goal::RatioAtMost(limit) => format!("≤ {limit}× runc"),
            Goal::RatioBelow(limit) => format!("< {limit}× runc"),
            Goal::UndertakerZero => "undertaker 0".to_string(),
        }
    }

    /// Whether the goal was met; `None` without a goal or without the numbers to judge.
    pub fn met(self, undertaker: &Summary, ratio: Option<f64>) -> Option<bool> {
        match self {
            Goal::None => None,
            Goal::RatioAtMost(limit) => ratio.map(|ratio| ratio <= limit),
            Goal::RatioBelow(limit) => ratio.map(|ratio| ratio < limit),
            Goal::UndertakerZero => Some(undertaker.max == 0.0),
        }
    }
}

/// One measurement as taken: what, in which unit, against which goal, and every sample.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// A stable name for scripts reading the JSON (`shim_vmrss`, `pod_start`, ...).
    pub key: &'static str,
    /// What the row shows, for people.
    pub label: String,
    /// A few words for the chart's panel.
    pub title: String,
    pub unit: Unit,
    pub goal: Goal,
    pub samples: PerHandler,
}

/// A handler's side of a row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    #[serde(flatten)]
    pub summary: Summary,
    pub samples: Vec<f64>,
}

/// A row of the table and of the JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub key: &'static str,
    pub label: String,
    pub title: String,
    pub unit: Unit,
    pub undertaker: Side,
    pub runc: Side,
    /// undertaker's median / runc's median.
    pub ratio: Option<f64>,
    pub goal: Goal,
    pub goal_met: Option<bool>,
}

impl Measurement {
    /// The row, or `None` when a handler has no samples (the measurement was skipped).
    pub fn row(self) -> Option<Row> {
        let undertaker = Summary::of(&self.samples.undertaker)?;
        let runc = Summary::of(&self.samples.runc)?;
        let ratio = ratio(&undertaker, &runc);
        Some(Row {
            key: self.key,
            label: self.label,
            title: self.title,
            unit: self.unit,
            goal_met: self.goal.met(&undertaker, ratio),
            ratio,
            goal: self.goal,
            undertaker: Side {
                summary: undertaker,
                samples: self.samples.undertaker,
            },
            runc: Side {
                summary: runc,
                samples: self.samples.runc,
            },
        })
    }
}

/// A ratio with enough digits to tell 0.003 from 0.
pub fn format_ratio(ratio: Option<f64>) -> String {
    match ratio {
        None => "–".to_string(),
        Some(0.0) => "0".to_string(),
        Some(ratio) if ratio < 0.01 => format!("{ratio:.4}"),
        Some(ratio) => format!("{ratio:.2}"),
    }
}

fn min_median_max(unit: Unit, summary: &Summary) -> String {
    format!(
        "{} / {} / {}",
        unit.format(summary.min),
        unit.format(summary.median),
        unit.format(summary.max)
    )
}

/// The rows as a Markdown table (readable as it is in a terminal).
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measurement | unit | n | undertaker min / median / max | runc min / median / max \
         | ratio (medians) | goal | met |\n|---|---|---:|---:|---:|---:|---|---|\n",
    );
    for row in rows {
        let met = match row.goal_met {
            None => "–",
            Some(true) => "yes",
            Some(false) => "**no**",
        };
        let count = if row.undertaker.summary.n == row.runc.summary.n {
            row.undertaker.summary.n.to_string()
        } else {
            format!("{}+{}", row.undertaker.summary.n, row.runc.summary.n)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            row.unit.symbol(),
            count,
            min_median_max(row.unit, &row.undertaker.summary),
            min_median_max(row.unit, &row.runc.summary),
            format_ratio(row.ratio),
            row.goal.describe(),
            met
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(unit: Unit, goal: Goal, undertaker: &[f64], runc: &[f64]) -> Measurement {
        Measurement {
            key: "test",
            label: "a row".to_string(),
            title: "row".to_string(),
            unit,
            goal,
            samples: PerHandler {
                undertaker: undertaker.to_vec(),
                runc: runc.to_vec(),
            },
        }
    }

    #[test]
    fn values_get_decimals_by_unit_and_size() {
        assert_eq!(Unit::Count.format(5001.0), "5001");
        assert_eq!(Unit::Mib.format(6.4567), "6.5");
        assert_eq!(Unit::Milliseconds.format(4.5678), "4.57");
        assert_eq!(Unit::Milliseconds.format(31.4159), "31.4");
        assert_eq!(Unit::Milliseconds.format(10_031.6), "10032");
    }

    #[test]
    fn ratios_keep_small_values_visible() {
        assert_eq!(format_ratio(None), "–");
        assert_eq!(format_ratio(Some(0.0)), "0");
        assert_eq!(format_ratio(Some(0.00312)), "0.0031");
        assert_eq!(format_ratio(Some(0.4812)), "0.48");
    }

    #[test]
    fn goals_are_judged_on_the_ratio_of_medians() {
        let half = measurement(Unit::Mib, Goal::RatioAtMost(0.5), &[6.0, 6.5, 9.0], &[13.0]);
        let row = half.row().expect("both sides");
        assert_eq!(row.ratio, Some(0.5));
        assert_eq!(row.goal_met, Some(true));

        let slower = measurement(Unit::Milliseconds, Goal::RatioAtMost(1.0), &[11.0], &[10.0]);
        assert_eq!(slower.row().expect("both sides").goal_met, Some(false));

        let below = measurement(
            Unit::Milliseconds,
            Goal::RatioBelow(0.01),
            &[100.0],
            &[10_000.0],
        );
        assert_eq!(below.row().expect("both sides").goal_met, Some(false));
    }

    #[test]
    fn a_zero_goal_looks_at_every_undertaker_sample() {
        let zero = measurement(Unit::Count, Goal::UndertakerZero, &[0.0, 0.0], &[5001.0]);
        let row = zero.row().expect("both sides");
        assert_eq!((row.goal_met, row.ratio), (Some(true), Some(0.0)));
        let one_left = measurement(
            Unit::Count,
            Goal::UndertakerZero,
            &[0.0, 1.0, 0.0],
            &[5001.0],
        );
        assert_eq!(one_left.row().expect("both sides").goal_met, Some(false));
    }

    #[test]
    fn a_row_without_a_goal_is_not_judged() {
        let row = measurement(Unit::Milliseconds, Goal::None, &[1.0], &[2.0])
            .row()
            .expect("both sides");
        assert_eq!(row.goal_met, None);
        assert_eq!(row.goal.describe(), "–");
    }

    #[test]
    fn a_skipped_measurement_has_no_row() {
        assert_eq!(
            measurement(Unit::Count, Goal::None, &[], &[1.0]).row(),
            None
        );
    }

    #[test]
    fn the_table_has_a_header_and_one_line_per_row() {
        let rows = vec![
            measurement(
                Unit::Mib,
                Goal::RatioAtMost(0.5),
                &[6.4, 6.5, 6.6],
                &[13.2, 13.6, 14.0],
            )
            .row()
            .expect("both sides"),
            measurement(Unit::Count, Goal::UndertakerZero, &[0.0, 0.0], &[5001.0])
                .row()
                .expect("both sides"),
        ];
        let table = markdown_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("| measurement | unit | n |"));
        assert_eq!(
            lines[2],
            "| a row | MiB | 3 | 6.4 / 6.5 / 6.6 | 13.2 / 13.6 / 14.0 | 0.48 | ≤ 0.5× runc | yes |"
        );
        assert_eq!(
            lines[3],
            "| a row | count | 2+1 | 0 / 0 / 0 | 5001 / 5001 / 5001 | 0 | undertaker 0 | yes |"
        );
    }

    #[test]
    fn a_missed_goal_stands_out() {
        let rows = vec![
            measurement(Unit::Milliseconds, Goal::RatioAtMost(1.0), &[12.0], &[10.0])
                .row()
                .expect("both sides"),
        ];
        assert!(markdown_table(&rows).contains("| 1.20 | ≤ 1× runc | **no** |"));
    }

    #[test]
    fn rows_serialize_with_summaries_samples_and_goal() {
        let row = measurement(Unit::Count, Goal::RatioBelow(0.01), &[1.0], &[200.0])
            .row()
            .expect("both sides");
        let json = serde_json::to_value(&row).expect("json");
        assert_eq!(json["undertaker"]["median"], 1.0);
        assert_eq!(json["runc"]["samples"], serde_json::json!([200.0]));
        assert_eq!(
            json["goal"],
            serde_json::json!({"kind": "ratio_below", "value": 0.01})
        );
        assert_eq!(json["goal_met"], true);
        assert_eq!(json["unit"], "count");
    }
}
