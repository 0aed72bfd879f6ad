//! The breakdown charts: what they draw is checked in the SVG text.

use icelens_core::breakdown::{
    Comparison, ComparisonRow, ConfusionTable, Dimension, Metric, ModelCell,
};
use icelens_core::metrics::Scores;
use icelens_core::plots::{confusion_svg, histogram_svg, loss_svg, model_colour, scores_svg};
use icelens_core::Chart;

fn cell(combined: f64, small: bool) -> Option<ModelCell> {
    Some(ModelCell {
        scores: Scores {
            SIC: combined - 10.0,
            SOD: combined,
            FLOE: combined + 5.0,
            combined,
        },
        pixels: [20_000, 20_000, 20_000],
        scenes: 3,
        small,
        diff: None,
    })
}

fn rows() -> Vec<ComparisonRow> {
    let row = |group: &str, a: f64, b: Option<f64>| ComparisonRow {
        dimension: Dimension::Region,
        group: group.into(),
        models: vec![cell(a, false), b.and_then(|b| cell(b, true))],
    };
    vec![
        row("NorthWest", 12.5, Some(20.0)),
        row("SGRDIEA", 48.0, None),
        row("CapeFarewell", 71.0, Some(f64::NAN)),
    ]
}

fn count(svg: &str, needle: &str) -> usize {
    svg.matches(needle).count()
}

#[test]
fn score_bars_have_one_bar_per_model_and_score_and_name_every_group() {
    let models = vec!["a.pt".to_string(), "b.pt".to_string()];
    let svg = scores_svg(Dimension::Region, &rows(), &models, Metric::Combined).unwrap();
    assert!(svg.starts_with("<svg"));
    for g in [
        "NorthWest",
        "SGRDIEA",
        "CapeFarewell",
        "Combined score by region",
        "higher is better",
        "a.pt",
        "b.pt",
    ] {
        assert!(svg.contains(g), "{g} missing");
    }
    // Model a: three bars; model b: one full-strength legend swatch and one faded bar for
    // its single (small) scored group; its NaN gets none.
    let a = model_colour(0).to_uppercase();
    let b = model_colour(1).to_uppercase();
    let bars_a = count(&svg, &format!("fill=\"{a}\""));
    let bars_b = count(&svg, &format!("fill=\"{b}\""));
    assert_eq!(
        bars_a,
        3 + 2,
        "three bars, a legend swatch and its marker: {svg}"
    );
    assert_eq!(bars_b, 1 + 2, "one bar, a legend swatch and its marker");
    // Another dimension draws nothing from these rows.
    let empty = scores_svg(Dimension::Month, &rows(), &models, Metric::SIC).unwrap();
    assert!(!empty.contains("NorthWest"));
    assert_eq!(count(&empty, &format!("fill=\"{a}\"")), 2);
}

#[test]
fn the_axis_reaches_negative_r2() {
    let models = vec!["a.pt".to_string()];
    let svg = scores_svg(Dimension::Region, &rows(), &models, Metric::SIC).unwrap();
    // SIC is combined - 10: -> 2.5, 38, 61; then a row far below zero.
    let mut r = rows();
    r[0].models[0].as_mut().unwrap().scores.SIC = -250.0;
    let neg = scores_svg(Dimension::Region, &r, &models, Metric::SIC).unwrap();
    assert!(
        neg.contains(">\n-250\n<") || neg.contains("-250"),
        "axis label of the minimum"
    );
    assert_ne!(svg, neg);
}

#[test]
fn a_confusion_matrix_has_a_cell_per_class_pair_and_row_shares() {
    let table = ConfusionTable {
        chart: Chart::SOD,
        labels: vec![0, 1, 2],
        counts: vec![vec![90, 10, 0], vec![0, 50, 50], vec![0, 0, 0]],
    };
    let names: Vec<String> = Chart::SOD.classes().iter().map(|s| s.to_string()).collect();
    let svg = confusion_svg(&table, &names).unwrap();
    assert!(svg.contains("SOD confusion (row %)"));
    assert!(svg.contains("predicted") && svg.contains("reference"));
    for n in &names[..3] {
        assert!(svg.contains(n.as_str()), "{n}");
    }
    // Shares written in the cells: 90 and 10 in the first row, 50 twice in the second.
    assert_eq!(count(&svg, ">\n90\n<"), 1);
    assert_eq!(count(&svg, ">\n10\n<"), 1);
    assert_eq!(count(&svg, ">\n50\n<"), 2);
}

#[test]
fn a_histogram_counts_scenes_per_group() {
    let groups = vec![("dmi".to_string(), 3), ("cis".to_string(), 1)];
    let svg = histogram_svg(Dimension::Service, &groups).unwrap();
    assert!(svg.contains("Scenes by ice service"));
    assert!(svg.contains("dmi") && svg.contains("cis") && svg.contains("scenes"));
    assert_eq!(
        count(
            &svg,
            &format!("fill=\"{}\"", model_colour(0).to_uppercase())
        ),
        2
    );
}

#[test]
fn charts_from_a_real_comparison_draw() {
    let c = Comparison::from_rows(vec![("m".into(), vec![])]);
    let svg = scores_svg(Dimension::Scene, &c.rows, &c.models, Metric::Combined).unwrap();
    assert!(svg.starts_with("<svg"));
}

#[test]
fn a_loss_chart_draws_steps_epochs_and_the_start() {
    let steps: Vec<(usize, f32)> = (1..=8).map(|i| (i, 2.0 / i as f32)).collect();
    let epochs = vec![(4, 1.0, 1.2), (8, 0.4, 0.7)];
    let svg = loss_svg(&steps, &epochs, Some(1.5)).unwrap();
    for label in [
        "Loss",
        "training (step)",
        "validation (epoch)",
        "validation before",
        "step",
    ] {
        assert!(svg.contains(label), "{label} missing");
    }
    // Two epoch markers per series (circles), and one polyline per series plus the legend's.
    assert_eq!(count(&svg, "<circle"), 4);
    assert!(count(&svg, "<polyline") >= 3);
    // A run that has not started yet still draws an empty chart.
    assert!(loss_svg(&[], &[], None).unwrap().starts_with("<svg"));
    // Non-finite losses (a diverged step) are left out instead of breaking the chart.
    let bad = loss_svg(&[(1, f32::NAN), (2, 1.0)], &[], None).unwrap();
    assert!(bad.starts_with("<svg"));
}
