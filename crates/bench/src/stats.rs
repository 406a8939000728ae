//! Summaries of repeated measurements: min, median and max, and the ratio of two medians.

use serde::Serialize;

/// Min, median and max of a non-empty set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// How many samples there were.
    pub n: usize,
    pub min: f64,
    /// The middle sample; with an even count, the mean of the two middle ones.
    pub median: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples (a measurement that was skipped).
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let middle = n / 2;
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[middle],
            _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
        };
        Some(Summary {
            n,
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// `numerator / denominator` of two medians; `None` when the denominator is zero (the ratio
/// would say nothing).
pub fn ratio(numerator: &Summary, denominator: &Summary) -> Option<f64> {
    (denominator.median != 0.0).then(|| numerator.median / denominator.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_samples_have_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn an_odd_count_takes_the_middle_sample_whatever_the_order() {
        let summary = Summary::of(&[9.0, 1.0, 5.0, 3.0, 7.0]).expect("samples");
        assert_eq!(
            summary,
            Summary {
                n: 5,
                min: 1.0,
                median: 5.0,
                max: 9.0
            }
        );
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_two_middle_samples() {
        let summary = Summary::of(&[4.0, 1.0, 2.0, 10.0]).expect("samples");
        assert_eq!(summary.median, 3.0);
        assert_eq!((summary.min, summary.max, summary.n), (1.0, 10.0, 4));
    }

    #[test]
    fn one_sample_is_min_median_and_max() {
        let summary = Summary::of(&[42.5]).expect("sample");
        assert_eq!(
            (summary.min, summary.median, summary.max),
            (42.5, 42.5, 42.5)
        );
    }

    #[test]
    fn the_ratio_is_of_medians_and_undefined_over_zero() {
        let small = Summary::of(&[1.0, 2.0, 100.0]).expect("samples");
        let large = Summary::of(&[8.0]).expect("sample");
        assert_eq!(ratio(&small, &large), Some(0.25));
        let zero = Summary::of(&[0.0, 0.0]).expect("samples");
        assert_eq!(ratio(&large, &zero), None);
        assert_eq!(ratio(&zero, &large), Some(0.0));
    }
}
