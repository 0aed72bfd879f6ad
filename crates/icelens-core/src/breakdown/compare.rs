//! Several models side by side: rows with differences against the first model, and CSV.

use super::*;

/// One model's entry in a [`ComparisonRow`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelCell {
    pub scores: Scores,
    pub pixels: [u64; 3],
    pub scenes: usize,
    pub small: bool,
    /// This model's scores minus the first model's (rounded to 3 decimals); `None` for the
    /// first model and where the first model has no such row.
    pub diff: Option<Scores>,
}

/// One (dimension, group) across models; `models[i]` is `None` where model i lacks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    pub dimension: Dimension,
    pub group: String,
    pub models: Vec<Option<ModelCell>>,
}

/// Several models' breakdowns joined by (dimension, group).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub models: Vec<String>,
    pub rows: Vec<ComparisonRow>,
}

pub(super) fn diff(a: &Scores, base: &Scores) -> Scores {
    let d = |x: f64, y: f64| round3(x - y);
    Scores {
        SIC: d(a.SIC, base.SIC),
        SOD: d(a.SOD, base.SOD),
        FLOE: d(a.FLOE, base.FLOE),
        combined: d(a.combined, base.combined),
    }
}

impl Comparison {
    /// Joins the accumulators' rows; the first is the baseline of the differences.
    pub fn new(accumulators: &[&Accumulator]) -> Comparison {
        Comparison::from_rows(
            accumulators
                .iter()
                .map(|a| (a.model().to_string(), a.rows()))
                .collect(),
        )
    }

    /// Joins (model name, rows) tables; the first is the baseline of the differences.
    pub fn from_rows(tables: Vec<(String, Vec<Row>)>) -> Comparison {
        let m = tables.len();
        let mut joined: BTreeMap<GroupKey, Vec<Option<ModelCell>>> = BTreeMap::new();
        for (i, (_, rows)) in tables.iter().enumerate() {
            for r in rows {
                let cells = joined
                    .entry(group_key(r.dimension, &r.group))
                    .or_insert_with(|| vec![None; m]);
                cells[i] = Some(ModelCell {
                    scores: r.scores,
                    pixels: r.pixels,
                    scenes: r.scenes,
                    small: r.small,
                    diff: None,
                });
            }
        }
        let rows = joined
            .into_iter()
            .map(|((dimension, _, group), mut models)| {
                if let Some(base) = models.first().cloned().flatten() {
                    for cell in models.iter_mut().skip(1).flatten() {
                        cell.diff = Some(diff(&cell.scores, &base.scores));
                    }
                }
                ComparisonRow {
                    dimension,
                    group,
                    models,
                }
            })
            .collect();
        Comparison {
            models: tables.into_iter().map(|(name, _)| name).collect(),
            rows,
        }
    }

    /// The ranking the page and `icelens evaluate --by` show: rows worst first by the first
    /// model's score (rows it lacks last), optionally of one dimension. Reference-class groups
    /// are left out: within one class R² and weighted F1 are degenerate (a single true value),
    /// and [`ClassRow`]'s precision and recall tell instead.
    pub fn ranked(&self, by: Metric, only: Option<Dimension>) -> Vec<ComparisonRow> {
        let key = |r: &ComparisonRow| {
            r.models
                .first()
                .cloned()
                .flatten()
                .map_or(f64::NAN, |m| by.of(&m.scores))
        };
        let mut rows: Vec<ComparisonRow> = self
            .rows
            .iter()
            .filter(|r| r.dimension != Dimension::Class && only.is_none_or(|d| d == r.dimension))
            .cloned()
            .collect();
        rows.sort_by(|a, b| worst_first(key(a), key(b)));
        rows
    }

    /// Rows sorted by how much model `model` lost against the first model on a metric,
    /// biggest loss first; rows without a difference last.
    pub fn rank_by_change(&self, by: Metric, model: usize) -> Vec<ComparisonRow> {
        let change = |r: &ComparisonRow| {
            r.models
                .get(model)
                .cloned()
                .flatten()
                .and_then(|c| c.diff)
                .map_or(f64::NAN, |d| by.of(&d))
        };
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| worst_first(change(a), change(b)));
        rows
    }

    /// CSV with one line per row and model present (header as [`to_csv`]).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        for r in &self.rows {
            for (name, cell) in self.models.iter().zip(&r.models) {
                if let Some(c) = cell {
                    csv_line(
                        &mut out,
                        r.dimension,
                        &r.group,
                        name,
                        &c.scores,
                        c.pixels,
                        c.scenes,
                        c.small,
                    );
                }
            }
        }
        out
    }
}

/// Header of the breakdown CSV.
pub const CSV_HEADER: &str =
    "dimension,group,model,SIC,SOD,FLOE,combined,pixels_SIC,pixels_SOD,pixels_FLOE,scenes,small\n";

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn csv_line(
    out: &mut String,
    dimension: Dimension,
    group: &str,
    model: &str,
    s: &Scores,
    pixels: [u64; 3],
    scenes: usize,
    small: bool,
) {
    // NaN (no score) is an empty field.
    let num = |x: f64| {
        if x.is_nan() {
            String::new()
        } else {
            x.to_string()
        }
    };
    out.push_str(&format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}\n",
        dimension.key(),
        csv_field(group),
        csv_field(model),
        num(s.SIC),
        num(s.SOD),
        num(s.FLOE),
        num(s.combined),
        pixels[0],
        pixels[1],
        pixels[2],
        scenes,
        small
    ));
}

/// CSV of one model's rows: header [`CSV_HEADER`], one line per row; a missing score
/// (NaN) is an empty field.
pub fn to_csv(model: &str, rows: &[Row]) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        csv_line(
            &mut out,
            r.dimension,
            &r.group,
            model,
            &r.scores,
            r.pixels,
            r.scenes,
            r.small,
        );
    }
    out
}
