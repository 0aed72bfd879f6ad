//! Rows of the breakdown: a group's scores, ranking, per-class precision/recall/F1 and the
//! confusion matrices as tables.

use super::*;

/// Scores of a group: the challenge's [`Scores::from_confusions`], except where a chart's
/// score is undefined, which becomes NaN instead of a number that looks like a result:
/// SIC with fewer than two labelled pixels (`r2_score` returns NaN there; `metrics` scores
/// one pixel 1 or 0), SOD or FLOE with none (`f1_score` refuses empty input). The combined
/// score is NaN when any chart's is.
pub fn group_scores(confusion: &[Confusion; 3]) -> Scores {
    let mut s = Scores::from_confusions(confusion);
    let n = |c: Chart| confusion[c as usize].total();
    if n(Chart::SIC) < 2 {
        s.SIC = f64::NAN;
    }
    if n(Chart::SOD) == 0 {
        s.SOD = f64::NAN;
    }
    if n(Chart::FLOE) == 0 {
        s.FLOE = f64::NAN;
    }
    if s.SIC.is_nan() || s.SOD.is_nan() || s.FLOE.is_nan() {
        s.combined = f64::NAN;
    }
    s
}

/// One line of the breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub dimension: Dimension,
    pub group: String,
    /// Pooled scores of the group's labelled pixels, see [`group_scores`].
    pub scores: Scores,
    /// Labelled pixels per chart (SIC, SOD, FLOE).
    pub pixels: [u64; 3],
    /// Scenes contributing at least one labelled pixel (scene-level: scenes in the group).
    pub scenes: usize,
    /// Too little data to read much into: the best-covered chart has fewer than
    /// [`SMALL_PIXELS`] labelled pixels, or (other than per scene) fewer than
    /// [`SMALL_SCENES`] scenes contribute.
    pub small: bool,
}

impl Row {
    pub fn condition(&self) -> Condition {
        Condition::new(self.dimension, self.group.clone())
    }

    pub(super) fn new(dimension: Dimension, group: &str, acc: &GroupAcc) -> Row {
        let pixels = [
            acc.confusion[0].total(),
            acc.confusion[1].total(),
            acc.confusion[2].total(),
        ];
        let scenes = acc.scenes.len();
        let small = pixels.iter().max().copied().unwrap_or(0) < SMALL_PIXELS
            || (dimension != Dimension::Scene && scenes < SMALL_SCENES);
        Row {
            dimension,
            group: group.to_string(),
            scores: group_scores(&acc.confusion),
            pixels,
            scenes,
            small,
        }
    }
}

/// Which score to rank by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    SIC,
    SOD,
    FLOE,
    Combined,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::SIC, Metric::SOD, Metric::FLOE, Metric::Combined];

    pub fn key(self) -> &'static str {
        match self {
            Metric::SIC => "SIC",
            Metric::SOD => "SOD",
            Metric::FLOE => "FLOE",
            Metric::Combined => "combined",
        }
    }

    pub fn of(self, s: &Scores) -> f64 {
        match self {
            Metric::SIC => s.SIC,
            Metric::SOD => s.SOD,
            Metric::FLOE => s.FLOE,
            Metric::Combined => s.combined,
        }
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.key().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown metric \"{}\"; valid: SIC, SOD, FLOE, combined",
                    s.trim()
                )
            })
    }
}

/// Ascending with NaN last (all four metrics are better when higher).
pub(super) fn worst_first(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.total_cmp(&b),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// Rows sorted worst first by a metric; rows without a score (NaN) last; ties keep their
/// order.
pub fn rank(mut rows: Vec<Row>, by: Metric) -> Vec<Row> {
    rows.sort_by(|a, b| worst_first(by.of(&a.scores), by.of(&b.scores)));
    rows
}

/// Per-class precision, recall and F1 of one chart, as scikit-learn computes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassRow {
    pub chart: Chart,
    pub class: u8,
    /// From the chart's class table; `"mask output"` for the head's extra output (§c.2),
    /// `"invalid N"` beyond.
    pub name: String,
    /// Fractions 0…1 (0 where undefined, as scikit-learn's `zero_division`).
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Labelled pixels with this reference class.
    pub support: u64,
    /// Labelled pixels predicted as this class.
    pub predicted: u64,
}

/// A class's name: from the chart's class table, `"mask output"` for the head's extra output
/// (§c.2), `"invalid N"` beyond.
pub fn class_name(chart: Chart, class: usize) -> String {
    match chart.classes().get(class) {
        Some(name) => name.to_string(),
        None if class == chart.n_classes() => "mask output".to_string(),
        None => format!("invalid {class}"),
    }
}

/// Per-class rows of the three charts, for every class in the reference or the predictions.
pub fn class_rows(confusion: &[Confusion; 3]) -> Vec<ClassRow> {
    let mut out = Vec::new();
    for chart in Chart::ALL {
        let c = &confusion[chart as usize];
        for s in c.per_class() {
            let k = s.class as usize;
            out.push(ClassRow {
                chart,
                class: s.class,
                name: class_name(chart, k),
                precision: s.precision,
                recall: s.recall,
                f1: s.f1,
                support: s.support,
                predicted: (0..K).map(|t| c.get(t, k)).sum(),
            });
        }
    }
    out
}

/// A confusion matrix as a JSON-friendly table: the chart's classes plus any other label
/// that was predicted, `counts[reference][predicted]` in `labels` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionTable {
    pub chart: Chart,
    pub labels: Vec<u8>,
    pub counts: Vec<Vec<u64>>,
}

/// The three charts' confusion matrices as tables.
pub fn confusion_tables(confusion: &[Confusion; 3]) -> Vec<ConfusionTable> {
    Chart::ALL
        .iter()
        .map(|chart| {
            let c = &confusion[*chart as usize];
            let used = |k: usize| (0..K).any(|j| c.get(k, j) + c.get(j, k) > 0);
            let labels: Vec<usize> = (0..K)
                .filter(|k| *k < chart.n_classes() || used(*k))
                .collect();
            ConfusionTable {
                chart: *chart,
                labels: labels.iter().map(|k| *k as u8).collect(),
                counts: labels
                    .iter()
                    .map(|t| labels.iter().map(|p| c.get(*t, *p)).collect())
                    .collect(),
            }
        })
        .collect()
}
