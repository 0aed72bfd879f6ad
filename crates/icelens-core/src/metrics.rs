//! The challenge's scores (spec §e), exactly: R² for SIC, weighted F1 for SOD and FLOE, both
//! with scikit-learn's semantics, ×100 rounded to 3 decimals, and the combined score.
//!
//! Everything is computed from confusion matrices: they are small, they add up across scenes
//! (pooling = adding matrices, which equals scoring the concatenated pixels as the challenge
//! does), and every breakdown (per class, per condition) comes from the same numbers.

use serde::Serialize;

use crate::chart::{Chart, CHART_FILL};

/// A confusion cell of a partial result (`icelens merge`) that cannot be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    #[error("confusion cell [{t}, {p}] is outside the {K} x {K} matrix")]
    Outside { t: u64, p: u64 },
    #[error("confusion cell [{t}, {p}] overflows")]
    Overflow { t: u64, p: u64 },
}

/// Class values kept apart in a confusion matrix; predictions above are counted as the last.
pub const K: usize = 16;

/// Pixel counts by (reference class, predicted class), pixels with reference 255 left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    pub counts: Vec<u64>,
}

impl Default for Confusion {
    fn default() -> Self {
        Self {
            counts: vec![0; K * K],
        }
    }
}

impl Confusion {
    /// Counts the pixels of one chart; `truth` 255 pixels are dropped, as the challenge does.
    pub fn from_maps(truth: &[u8], pred: &[u8]) -> Self {
        let mut c = Confusion::default();
        c.add_maps(truth, pred);
        c
    }

    pub fn add_maps(&mut self, truth: &[u8], pred: &[u8]) {
        for (t, p) in truth.iter().zip(pred) {
            self.add(*t, *p);
        }
    }

    #[inline]
    pub fn add(&mut self, truth: u8, pred: u8) {
        if truth != CHART_FILL {
            let t = (truth as usize).min(K - 1);
            let p = (pred as usize).min(K - 1);
            self.counts[t * K + p] += 1;
        }
    }

    pub fn merge(&mut self, other: &Confusion) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn get(&self, truth: usize, pred: usize) -> u64 {
        self.counts[truth * K + pred]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The non-zero cells as `[reference, predicted, pixels]`, reference-major: the form
    /// partial results store (a scene's matrix has a few dozen of its 256 cells set).
    pub fn to_sparse(&self) -> Vec<[u64; 3]> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| [(i / K) as u64, (i % K) as u64, *n])
            .collect()
    }

    /// The inverse of [`Confusion::to_sparse`]; cells given twice add up. An error names the
    /// first cell outside the K × K matrix.
    pub fn from_sparse(cells: &[[u64; 3]]) -> Result<Confusion, CellError> {
        let mut c = Confusion::default();
        for &[t, p, n] in cells {
            if t >= K as u64 || p >= K as u64 {
                return Err(CellError::Outside { t, p });
            }
            let cell = &mut c.counts[t as usize * K + p as usize];
            *cell = cell.checked_add(n).ok_or(CellError::Overflow { t, p })?;
        }
        Ok(c)
    }

    /// `sklearn.metrics.r2_score` on class indices: 1 − Σ(t−p)² / Σ(t−mean t)²; a constant
    /// reference scores 1 if predicted perfectly, else 0 (scikit-learn ≥ 1.1).
    pub fn r2(&self) -> f64 {
        let (mut n, mut st, mut stt, mut sse) = (0i128, 0i128, 0i128, 0i128);
        for t in 0..K {
            for p in 0..K {
                let c = self.get(t, p) as i128;
                let (ti, pi) = (t as i128, p as i128);
                n += c;
                st += c * ti;
                stt += c * ti * ti;
                sse += c * (ti - pi) * (ti - pi);
            }
        }
        if n == 0 {
            return f64::NAN;
        }
        // Σ(t − mean)² = (n Σt² − (Σt)²) / n, exact in integers before the one division.
        let tot_n = n * stt - st * st;
        if tot_n == 0 {
            return if sse == 0 { 1.0 } else { 0.0 };
        }
        1.0 - (sse as f64) / (tot_n as f64 / n as f64)
    }

    /// Per label (over the union of reference and predicted labels): precision, recall, F1
    /// and support, as `sklearn.metrics.precision_recall_fscore_support`.
    pub fn per_class(&self) -> Vec<ClassScore> {
        (0..K)
            .filter_map(|c| {
                let tp = self.get(c, c);
                let support: u64 = (0..K).map(|p| self.get(c, p)).sum();
                let predicted: u64 = (0..K).map(|t| self.get(t, c)).sum();
                if support == 0 && predicted == 0 {
                    return None;
                }
                let (fp, fn_) = (predicted - tp, support - tp);
                let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
                Some(ClassScore {
                    class: c as u8,
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    f1: ratio(2 * tp, 2 * tp + fp + fn_),
                    support,
                })
            })
            .collect()
    }

    /// `sklearn.metrics.f1_score(average='weighted')`.
    pub fn weighted_f1(&self) -> f64 {
        let classes = self.per_class();
        let support: u64 = classes.iter().map(|c| c.support).sum();
        if support == 0 {
            return 0.0;
        }
        classes.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / support as f64
    }

    /// The chart's challenge metric (R² for SIC, weighted F1 otherwise), not yet scaled.
    pub fn metric(&self, chart: Chart) -> f64 {
        match chart {
            Chart::SIC => self.r2(),
            _ => self.weighted_f1(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub class: u8,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// `np.round(x, 3)`: scale, round half to even, unscale.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round_ties_even() / 1000.0
}

/// The challenge's four numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[allow(non_snake_case)]
pub struct Scores {
    pub SIC: f64,
    pub SOD: f64,
    pub FLOE: f64,
    pub combined: f64,
}

impl Scores {
    /// Scores from the three charts' confusion matrices (SIC, SOD, FLOE order).
    pub fn from_confusions(c: &[Confusion; 3]) -> Scores {
        let s = |chart: Chart| round3(c[chart as usize].metric(chart) * 100.0);
        let (sic, sod, floe) = (s(Chart::SIC), s(Chart::SOD), s(Chart::FLOE));
        let weights: f64 = Chart::ALL.iter().map(|c| c.score_weight()).sum();
        let combined = round3(
            (sic * Chart::SIC.score_weight()
                + sod * Chart::SOD.score_weight()
                + floe * Chart::FLOE.score_weight())
                / weights,
        );
        Scores {
            SIC: sic,
            SOD: sod,
            FLOE: floe,
            combined,
        }
    }

    pub fn get(&self, chart: Chart) -> f64 {
        match chart {
            Chart::SIC => self.SIC,
            Chart::SOD => self.SOD,
            Chart::FLOE => self.FLOE,
        }
    }
}

/// Confusion matrices of a scene's three charts against predictions.
pub fn confusions(charts: &[Vec<u8>; 3], pred: [&[u8]; 3]) -> [Confusion; 3] {
    [
        Confusion::from_maps(&charts[0], pred[0]),
        Confusion::from_maps(&charts[1], pred[1]),
        Confusion::from_maps(&charts[2], pred[2]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r2_edge_cases_follow_scikit_learn() {
        assert_eq!(Confusion::from_maps(&[3, 3, 3], &[3, 3, 3]).r2(), 1.0);
        assert_eq!(Confusion::from_maps(&[3, 3, 3], &[3, 4, 3]).r2(), 0.0);
        // t = [0, 1, 2, 3], p = [0, 2, 2, 3]: 1 - 1 / 5 = 0.8
        let r = Confusion::from_maps(&[0, 1, 2, 3], &[0, 2, 2, 3]).r2();
        assert!((r - 0.8).abs() < 1e-12);
        assert!(Confusion::from_maps(&[255], &[1]).r2().is_nan());
    }

    #[test]
    fn weighted_f1_counts_prediction_only_labels() {
        // sklearn: f1_score([0,0,1,1],[0,2,1,1],average='weighted') = 0.8333…
        let f = Confusion::from_maps(&[0, 0, 1, 1], &[0, 2, 1, 1]).weighted_f1();
        assert!((f - (0.5 * (2.0 / 3.0) + 0.5 * 1.0)).abs() < 1e-12, "{f}");
    }

    #[test]
    fn sparse_round_trip() {
        let c = Confusion::from_maps(&[0, 0, 1, 15, 255], &[0, 2, 1, 40, 3]);
        let sparse = c.to_sparse();
        assert_eq!(sparse, vec![[0, 0, 1], [0, 2, 1], [1, 1, 1], [15, 15, 1]]);
        assert_eq!(Confusion::from_sparse(&sparse).unwrap(), c);
        let e = Confusion::from_sparse(&[[16, 0, 1]]).unwrap_err();
        assert_eq!(e, CellError::Outside { t: 16, p: 0 });
        assert!(e.to_string().contains("[16, 0]"), "{e}");
        let e = Confusion::from_sparse(&[[1, 2, u64::MAX], [1, 2, 1]]).unwrap_err();
        assert_eq!(e, CellError::Overflow { t: 1, p: 2 });
    }

    #[test]
    fn rounding_is_numpy_round() {
        assert_eq!(round3(1.2345), 1.234); // 1234.5 is below .5 in binary
        assert_eq!(round3(0.0005), 0.0);
        assert_eq!(round3(-25.39449), -25.394);
    }
}
