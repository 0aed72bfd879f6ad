//! Charts of the breakdown as SVG text: scores per condition, confusion matrices, and how the
//! loaded scenes are distributed.
//!
//! Drawn with `plotters` (its SVG backend only: no system fonts, no bitmap code), so the same
//! function gives the page its charts and `icelens evaluate --plots` its files. The style is
//! the page's: light text on a dark panel, large type that reads on a projector.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::breakdown::{ComparisonRow, ConfusionTable, Dimension, Metric};

const BACKGROUND: RGBColor = RGBColor(18, 27, 46);
const TEXT: RGBColor = RGBColor(232, 238, 249);
const GRID: RGBColor = RGBColor(60, 76, 106);
/// The starting level of a loss chart: quiet, but above the grid.
const BEFORE: RGBColor = RGBColor(170, 180, 200);
/// One colour per model, in load order: the first is the page's accent.
const MODEL_COLOURS: [RGBColor; 4] = [
    RGBColor(92, 200, 255),
    RGBColor(255, 170, 60),
    RGBColor(150, 230, 120),
    RGBColor(230, 120, 220),
];
const FONT: &str = "sans-serif";

/// Colour of the n-th model's bars.
pub fn model_colour(i: usize) -> String {
    let c = MODEL_COLOURS[i % MODEL_COLOURS.len()];
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// plotters refused to draw (its errors carry the backend's, which are not `'static`, so
/// the text is kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chart could not be drawn: {0}")]
pub struct PlotError(String);

fn err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError(format!("{e:?}"))
}

/// Horizontal bars of one score per group of a dimension, one bar per model; groups in the
/// order given (worst first when the rows come ranked). Groups without a score get no bar.
pub fn scores_svg(
    dimension: Dimension,
    rows: &[ComparisonRow],
    models: &[String],
    metric: Metric,
) -> Result<String, PlotError> {
    let rows: Vec<&ComparisonRow> = rows.iter().filter(|r| r.dimension == dimension).collect();
    let n = rows.len().max(1);
    let m = rows
        .iter()
        .map(|r| r.models.len())
        .chain([models.len(), 1])
        .max()
        .unwrap_or(1);
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.models.iter().flatten().map(|c| metric.of(&c.scores)))
        .filter(|v| v.is_finite())
        .collect();
    // Scores are ×100; R² can go far below zero, so the axis starts at the worst value.
    let lo = values.iter().copied().fold(0.0f64, f64::min).floor();
    let hi = values.iter().copied().fold(100.0f64, f64::max).ceil();
    // With several models, an empty band on top holds the legend clear of the bars.
    let legend_band = usize::from(models.len() > 1);
    let height = 90 + (n + legend_band) as u32 * (14 + 18 * m as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, height)).into_drawing_area();
        root.fill(&BACKGROUND).map_err(err)?;
        let label_width = rows
            .iter()
            .map(|r| r.group.chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, 24) as u32
            * 9
            + 20;
        let title = format!(
            "{} by {}",
            match metric {
                Metric::SIC => "SIC R²",
                Metric::SOD => "SOD weighted F1",
                Metric::FLOE => "FLOE weighted F1",
                Metric::Combined => "Combined score",
            },
            dimension.title().to_lowercase()
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22).into_font().color(&TEXT))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(label_width)
            .build_cartesian_2d(lo..hi, 0f64..(n + legend_band) as f64)
            .map_err(err)?;
        let names: Vec<String> = rows.iter().map(|r| r.group.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(GRID)
            .x_desc("score (×100; higher is better)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT, 15).into_font().color(&TEXT))
            .axis_desc_style((FONT, 15).into_font().color(&TEXT))
            .y_labels((n + legend_band) * 2 + 1)
            .y_label_formatter(&|y| {
                // Labels sit at the middle of each group's band.
                let k = y - 0.5;
                if (k - k.round()).abs() < 1e-6 && k >= 0.0 {
                    (n - 1)
                        .checked_sub(k.round() as usize)
                        .and_then(|idx| names.get(idx).cloned())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        let band = 0.8 / m as f64;
        for (gi, r) in rows.iter().enumerate() {
            // The first group is drawn at the top.
            let base = (n - 1 - gi) as f64 + 0.1;
            for (mi, cell) in r.models.iter().enumerate() {
                let Some(c) = cell else { continue };
                let v = metric.of(&c.scores);
                if !v.is_finite() {
                    continue;
                }
                let y0 = base + (m - 1 - mi) as f64 * band;
                let colour = MODEL_COLOURS[mi % MODEL_COLOURS.len()];
                let style = if c.small {
                    colour.mix(0.45).filled()
                } else {
                    colour.filled()
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0f64.max(lo), y0), (v, y0 + band * 0.9)],
                        style,
                    )))
                    .map_err(err)?;
            }
        }
        if models.len() > 1 {
            for (mi, name) in models.iter().enumerate() {
                let colour = MODEL_COLOURS[mi % MODEL_COLOURS.len()];
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(lo, -1.0), (lo, -1.0)],
                        colour.filled(),
                    )))
                    .map_err(err)?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(BACKGROUND.mix(0.9))
                .border_style(GRID)
                .label_font((FONT, 15).into_font().color(&TEXT))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A confusion matrix as a heat map: reference classes down, predicted across, each row
/// shaded by the share of its pixels (so rare classes read as well as common ones), with the
/// share written in each cell. `names` are indexed by class value.
pub fn confusion_svg(table: &ConfusionTable, names: &[String]) -> Result<String, PlotError> {
    let k = table.labels.len().max(1);
    let cell = (420 / k as u32).clamp(28, 60);
    let side = cell * k as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (side + 260, side + 150)).into_drawing_area();
        root.fill(&BACKGROUND).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} confusion (row %)", table.chart.name()),
                (FONT, 22).into_font().color(&TEXT),
            )
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..k as f64, 0f64..k as f64)
            .map_err(err)?;
        let label = |v: f64| -> String {
            let i = v - 0.5;
            if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
                let i = i.round() as usize;
                table
                    .labels
                    .get(i)
                    .map(|l| {
                        names
                            .get(*l as usize)
                            .cloned()
                            .unwrap_or_else(|| l.to_string())
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .axis_style(GRID)
            .x_labels(2 * k + 1)
            .y_labels(2 * k + 1)
            .x_label_formatter(&|x| {
                let s = label(*x);
                s.chars().take(10).collect()
            })
            .y_label_formatter(&|y| label(k as f64 - y))
            .x_desc("predicted")
            .y_desc("reference")
            .label_style((FONT, 14).into_font().color(&TEXT))
            .axis_desc_style((FONT, 15).into_font().color(&TEXT))
            .draw()
            .map_err(err)?;
        for (r, row) in table.counts.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (c, &n) in row.iter().enumerate() {
                let share = if total > 0 {
                    n as f64 / total as f64
                } else {
                    0.0
                };
                let y = (k - 1 - r) as f64;
                let shade = if r == c {
                    RGBColor(40, 200, 120).mix(0.15 + 0.85 * share)
                } else {
                    RGBColor(235, 60, 60).mix(0.1 + 0.9 * share)
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(c as f64, y), (c as f64 + 1.0, y + 1.0)],
                        shade.filled(),
                    )))
                    .map_err(err)?;
                if total > 0 && share >= 0.005 {
                    let style = (FONT, 13)
                        .into_font()
                        .color(&TEXT)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{:.0}", share * 100.0),
                            (c as f64 + 0.5, y + 0.5),
                            style,
                        )))
                        .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Scenes per group, as vertical bars with the count on each.
pub fn histogram_svg(
    dimension: Dimension,
    groups: &[(String, usize)],
) -> Result<String, PlotError> {
    let n = groups.len().max(1);
    let max = groups.iter().map(|(_, c)| *c).max().unwrap_or(1).max(1);
    let width = (140 + 70 * n as u32).max(360);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 300)).into_drawing_area();
        root.fill(&BACKGROUND).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Scenes by {}", dimension.title().to_lowercase()),
                (FONT, 20).into_font().color(&TEXT),
            )
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..n as f64, 0f64..(max as f64 * 1.15))
            .map_err(err)?;
        let names: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(GRID)
            .x_labels(2 * n + 1)
            .x_label_formatter(&|x| {
                let i = x - 0.5;
                if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
                    names.get(i.round() as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_labels(max.min(10) + 1)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("scenes")
            .label_style((FONT, 14).into_font().color(&TEXT))
            .axis_desc_style((FONT, 14).into_font().color(&TEXT))
            .draw()
            .map_err(err)?;
        for (i, (_, c)) in groups.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *c as f64)],
                    MODEL_COLOURS[0].filled(),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The losses of a training run: the training loss of every step (thin line), the mean
/// training loss and the validation loss of every epoch (markers at the step that closed it),
/// and the validation loss before training (a dashed level) when known. Log-scaled when the
/// losses span more than a factor of ten, as early training does.
pub fn loss_svg(
    steps: &[(usize, f32)],
    epochs: &[(usize, f32, f32)],
    before: Option<f32>,
) -> Result<String, PlotError> {
    let values: Vec<f64> = steps
        .iter()
        .map(|s| s.1 as f64)
        .chain(epochs.iter().flat_map(|e| [e.1 as f64, e.2 as f64]))
        .chain(before.map(|b| b as f64))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if values.is_empty() {
        (0.1, 1.0)
    } else {
        (lo * 0.9, hi * 1.1)
    };
    let last = steps
        .iter()
        .map(|s| s.0)
        .chain(epochs.iter().map(|e| e.0))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 300)).into_drawing_area();
        root.fill(&BACKGROUND).map_err(err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption("Loss", (FONT, 20).into_font().color(&TEXT))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60);
        let train = MODEL_COLOURS[0];
        let val = MODEL_COLOURS[1];
        let step_line = steps
            .iter()
            .filter(|s| s.1.is_finite() && s.1 > 0.0)
            .map(|s| (s.0 as f64, s.1 as f64));
        let epoch_train = epochs
            .iter()
            .filter(|e| e.1.is_finite() && e.1 > 0.0)
            .map(|e| (e.0 as f64, e.1 as f64));
        let epoch_val = epochs
            .iter()
            .filter(|e| e.2.is_finite() && e.2 > 0.0)
            .map(|e| (e.0 as f64, e.2 as f64));
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .bold_line_style(GRID)
                    .light_line_style(TRANSPARENT)
                    .axis_style(GRID)
                    .x_desc("step")
                    .y_desc("loss")
                    .y_label_formatter(&|y| format!("{y:.3}"))
                    .label_style((FONT, 14).into_font().color(&TEXT))
                    .axis_desc_style((FONT, 14).into_font().color(&TEXT))
                    .draw()
                    .map_err(err)?;
                if let Some(b) = before.filter(|b| b.is_finite() && *b > 0.0) {
                    // A dashed level: short segments along the run.
                    let dash = last / 40.0;
                    let segments = (0..40).step_by(2).map(|i| {
                        let x = i as f64 * dash;
                        PathElement::new(
                            [(x, b as f64), (x + dash, b as f64)],
                            BEFORE.stroke_width(2),
                        )
                    });
                    chart
                        .draw_series(segments)
                        .map_err(err)?
                        .label("validation before")
                        .legend(|(x, y)| {
                            PathElement::new([(x, y), (x + 16, y)], BEFORE.stroke_width(2))
                        });
                }
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        step_line.collect::<Vec<_>>(),
                        train.mix(0.55).stroke_width(1),
                    )))
                    .map_err(err)?
                    .label("training (step)")
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], train.stroke_width(2))
                    });
                let epoch_train: Vec<(f64, f64)> = epoch_train.collect();
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        epoch_train.clone(),
                        train.stroke_width(3),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(
                        epoch_train
                            .iter()
                            .map(|p| Circle::new(*p, 4, train.filled())),
                    )
                    .map_err(err)?;
                let epoch_val: Vec<(f64, f64)> = epoch_val.collect();
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        epoch_val.clone(),
                        val.stroke_width(3),
                    )))
                    .map_err(err)?
                    .label("validation (epoch)")
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], val.stroke_width(3))
                    });
                chart
                    .draw_series(epoch_val.iter().map(|p| Circle::new(*p, 5, val.filled())))
                    .map_err(err)?;
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(BACKGROUND.mix(0.85))
                    .border_style(GRID)
                    .label_font((FONT, 14).into_font().color(&TEXT))
                    .draw()
                    .map_err(err)?;
            }};
        }
        if hi / lo > 10.0 {
            draw!(builder
                .build_cartesian_2d(0f64..last, (lo..hi).log_scale())
                .map_err(err)?);
        } else {
            draw!(builder
                .build_cartesian_2d(0f64..last, lo..hi)
                .map_err(err)?);
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
