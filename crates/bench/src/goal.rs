//! What undertaker should achieve relative to runc, and whether a row met it.

use serde::Serialize;

use crate::stats::Summary;

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
    /// ratio >= value (rates: more is better).
    RatioAtLeast(f64),
    /// undertaker's largest sample is zero.
    UndertakerZero,
}

/// What a ratio is when one side's median was capped (the wait was cut off, so that sample is
/// a lower bound): the true ratio is at most, or at least, the ratio shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// runc's median was capped: the true ratio is smaller.
    AtMost,
    /// undertaker's median was capped: the true ratio is larger.
    AtLeast,
}

impl Goal {
    pub fn describe(self) -> String {
        match self {
            Goal::None => "–".to_string(),
            Goal::RatioAtMost(limit) => format!("≤ {limit}× runc"),
            Goal::RatioBelow(limit) => format!("< {limit}× runc"),
            Goal::RatioAtLeast(limit) => format!("≥ {limit}× runc"),
            Goal::UndertakerZero => "undertaker 0".to_string(),
        }
    }

    /// Whether the goal was met; `None` without a goal or without the numbers to judge. With
    /// a bound, only one outcome is proven: an upper bound within an upper limit meets it, a
    /// lower bound beyond it misses it; the other cases say nothing.
    pub fn met(
        self,
        undertaker: &Summary,
        ratio: Option<f64>,
        bound: Option<Bound>,
    ) -> Option<bool> {
        // `fits`: whether the ratio shown meets the goal; `proves_fit`: the bound under which
        // a fit carries over to the true ratio (the other bound carries a miss over).
        let judge = |fits: bool, proves_fit: Bound| match bound {
            None => Some(fits),
            Some(side) if side == proves_fit => fits.then_some(true),
            Some(_) => (!fits).then_some(false),
        };
        match self {
            Goal::None => None,
            Goal::RatioAtMost(limit) => judge(ratio? <= limit, Bound::AtMost),
            Goal::RatioBelow(limit) => judge(ratio? < limit, Bound::AtMost),
            Goal::RatioAtLeast(limit) => judge(ratio? >= limit, Bound::AtLeast),
            Goal::UndertakerZero => Some(undertaker.max == 0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(median: f64) -> Summary {
        Summary::of(&[median]).expect("one sample")
    }

    #[test]
    fn without_a_bound_the_ratio_decides() {
        let any = summary(1.0);
        assert_eq!(
            Goal::RatioAtMost(1.0).met(&any, Some(1.0), None),
            Some(true)
        );
        assert_eq!(
            Goal::RatioBelow(1.0).met(&any, Some(1.0), None),
            Some(false)
        );
        assert_eq!(
            Goal::RatioAtLeast(1.0).met(&any, Some(0.9), None),
            Some(false)
        );
        assert_eq!(Goal::RatioAtLeast(1.0).met(&any, None, None), None);
        assert_eq!(Goal::None.met(&any, Some(0.5), None), None);
    }

    #[test]
    fn a_capped_runc_proves_only_a_small_enough_ratio() {
        let any = summary(1.0);
        // runc capped: the true ratio is at most the one shown.
        let goal = Goal::RatioAtMost(1.0);
        assert_eq!(goal.met(&any, Some(0.05), Some(Bound::AtMost)), Some(true));
        assert_eq!(goal.met(&any, Some(1.5), Some(Bound::AtMost)), None);
        // undertaker capped: the true ratio is at least the one shown.
        assert_eq!(goal.met(&any, Some(1.5), Some(Bound::AtLeast)), Some(false));
        assert_eq!(goal.met(&any, Some(0.5), Some(Bound::AtLeast)), None);
        let rate = Goal::RatioAtLeast(1.0);
        assert_eq!(rate.met(&any, Some(1.2), Some(Bound::AtLeast)), Some(true));
        assert_eq!(rate.met(&any, Some(0.8), Some(Bound::AtMost)), Some(false));
        assert_eq!(rate.met(&any, Some(1.2), Some(Bound::AtMost)), None);
    }

    #[test]
    fn a_zero_goal_looks_at_the_largest_sample() {
        let zeros = Summary::of(&[0.0, 0.0]).expect("samples");
        let one = Summary::of(&[0.0, 1.0, 0.0]).expect("samples");
        assert_eq!(Goal::UndertakerZero.met(&zeros, None, None), Some(true));
        assert_eq!(Goal::UndertakerZero.met(&one, Some(0.0), None), Some(false));
    }

    #[test]
    fn goals_describe_themselves() {
        assert_eq!(Goal::RatioAtLeast(1.0).describe(), "≥ 1× runc");
        assert_eq!(Goal::None.describe(), "–");
    }
}
