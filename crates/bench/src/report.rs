//! What one benchmark row says: the samples of both handlers, their summaries, the ratio of
//! the medians (undertaker / runc), the goal and whether it was met; and the Markdown table.

use std::fmt::Write;

use serde::Serialize;

pub use crate::goal::{Bound, Goal};
use crate::handler::PerHandler;
use crate::stats::{ratio, Summary};
pub use crate::unit::Unit;

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
    /// Where waiting was cut off: a sample at or above it is a lower bound ("> cap, capped").
    pub cap: Option<f64>,
    /// What the numbers alone do not say (start and end values, how a window was scaled).
    pub detail: Option<String>,
}

impl Measurement {
    /// A row without a cap or detail.
    pub fn new(
        key: &'static str,
        label: String,
        title: String,
        unit: Unit,
        goal: Goal,
        samples: PerHandler,
    ) -> Measurement {
        Measurement {
            key,
            label,
            title,
            unit,
            goal,
            samples,
            cap: None,
            detail: None,
        }
    }
}

/// A handler's side of a row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    #[serde(flatten)]
    pub summary: Summary,
    pub samples: Vec<f64>,
    /// How many samples reached the cap (and are lower bounds).
    pub capped: usize,
}

impl Side {
    fn new(samples: Vec<f64>, cap: Option<f64>) -> Option<Side> {
        Some(Side {
            summary: Summary::of(&samples)?,
            capped: samples
                .iter()
                .filter(|&&sample| is_capped(sample, cap))
                .count(),
            samples,
        })
    }
}

fn is_capped(value: f64, cap: Option<f64>) -> bool {
    cap.is_some_and(|cap| value >= cap)
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
    /// Set when one median was capped: the true ratio is at most or at least `ratio`.
    pub ratio_bound: Option<Bound>,
    pub goal: Goal,
    pub goal_met: Option<bool>,
    pub cap: Option<f64>,
    pub detail: Option<String>,
}

impl Measurement {
    /// The row, or `None` when a handler has no samples (the measurement was skipped).
    pub fn row(self) -> Option<Row> {
        let undertaker = Side::new(self.samples.undertaker, self.cap)?;
        let runc = Side::new(self.samples.runc, self.cap)?;
        let capped = |side: &Side| is_capped(side.summary.median, self.cap);
        let (ratio, ratio_bound) = match (capped(&undertaker), capped(&runc)) {
            (false, false) => (ratio(&undertaker.summary, &runc.summary), None),
            (false, true) => (
                ratio(&undertaker.summary, &runc.summary),
                Some(Bound::AtMost),
            ),
            (true, false) => (
                ratio(&undertaker.summary, &runc.summary),
                Some(Bound::AtLeast),
            ),
            // Both cut off: nothing to compare.
            (true, true) => (None, None),
        };
        Some(Row {
            key: self.key,
            label: self.label,
            title: self.title,
            unit: self.unit,
            goal_met: self.goal.met(&undertaker.summary, ratio, ratio_bound),
            ratio,
            ratio_bound,
            goal: self.goal,
            undertaker,
            runc,
            cap: self.cap,
            detail: self.detail,
        })
    }
}

impl Row {
    /// A value of this row as shown: `>20000` where it reached the cap.
    pub fn format_value(&self, value: f64) -> String {
        if is_capped(value, self.cap) {
            format!(">{}", self.unit.format(value))
        } else {
            self.unit.format(value)
        }
    }

    /// The ratio as shown, with `<` or `>` when it is a bound.
    pub fn format_ratio(&self) -> String {
        let shown = format_ratio(self.ratio);
        match (self.ratio, self.ratio_bound) {
            (Some(_), Some(Bound::AtMost)) => format!("<{shown}"),
            (Some(_), Some(Bound::AtLeast)) => format!(">{shown}"),
            _ => shown,
        }
    }

    /// One side's min / median / max, with `, capped` when any sample reached the cap.
    fn min_median_max(&self, side: &Side) -> String {
        let summary = &side.summary;
        let values = format!(
            "{} / {} / {}",
            self.format_value(summary.min),
            self.format_value(summary.median),
            self.format_value(summary.max)
        );
        if side.capped > 0 {
            values + ", capped"
        } else {
            values
        }
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
            row.min_median_max(&row.undertaker),
            row.min_median_max(&row.runc),
            row.format_ratio(),
            row.goal.describe(),
            met
        );
    }
    let details: Vec<String> = rows
        .iter()
        .filter_map(|row| Some(format!("- {}: {}", row.key, row.detail.as_ref()?)))
        .collect();
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details.join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(unit: Unit, goal: Goal, undertaker: &[f64], runc: &[f64]) -> Measurement {
        Measurement::new(
            "test",
            "a row".to_string(),
            "row".to_string(),
            unit,
            goal,
            PerHandler {
                undertaker: undertaker.to_vec(),
                runc: runc.to_vec(),
            },
        )
    }

    #[test]
    fn a_capped_side_is_marked_and_makes_the_ratio_a_bound() {
        let mut capped = measurement(
            Unit::Milliseconds,
            Goal::RatioAtMost(1.0),
            &[1010.0],
            &[20_000.0],
        );
        capped.cap = Some(20_000.0);
        let row = capped.row().expect("both sides");
        assert_eq!((row.undertaker.capped, row.runc.capped), (0, 1));
        assert_eq!(row.ratio_bound, Some(Bound::AtMost));
        assert_eq!(row.format_ratio(), "<0.05");
        assert_eq!(row.goal_met, Some(true));
        let table = markdown_table(std::slice::from_ref(&row));
        assert!(
            table.contains("| 1010 / 1010 / 1010 | >20000 / >20000 / >20000, capped | <0.05 |"),
            "{table}"
        );
        let json = serde_json::to_value(&row).expect("json");
        assert_eq!(json["runc"]["capped"], 1);
        assert_eq!(json["ratio_bound"], "at_most");
        assert_eq!(json["cap"], 20_000.0);
    }

    #[test]
    fn a_side_capped_in_one_sample_only_keeps_a_plain_ratio() {
        let mut capped = measurement(Unit::Milliseconds, Goal::None, &[5.0], &[1.0, 2.0, 9.0]);
        capped.cap = Some(9.0);
        let row = capped.row().expect("both sides");
        assert_eq!(row.runc.capped, 1);
        assert_eq!((row.ratio, row.ratio_bound), (Some(2.5), None));
        assert_eq!(row.min_median_max(&row.runc), "1.00 / 2.00 / >9.00, capped");
    }

    #[test]
    fn both_sides_capped_have_no_ratio() {
        let mut capped = measurement(Unit::Milliseconds, Goal::RatioAtMost(1.0), &[9.0], &[9.0]);
        capped.cap = Some(9.0);
        let row = capped.row().expect("both sides");
        assert_eq!((row.ratio, row.goal_met), (None, None));
    }

    #[test]
    fn details_follow_the_table() {
        let mut with_detail = measurement(Unit::Count, Goal::None, &[0.0], &[1.0]);
        with_detail.detail = Some("undertaker 12 → 12".to_string());
        let table = markdown_table(&[with_detail.row().expect("both sides")]);
        assert!(table.ends_with("\n- test: undertaker 12 → 12\n"), "{table}");
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
