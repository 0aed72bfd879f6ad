//! `icelens evaluate`: the challenge's scores per scene and pooled, for one model or several,
//! and with `--by` the breakdown by condition the page shows (same core, same numbers).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use icelens_core::breakdown::{
    class_name, dataset_histograms, Accumulator, ClassRow, Comparison, ComparisonRow, Dimension,
    Metric,
};
use icelens_core::metrics::{confusions, Confusion, Scores};
use icelens_core::plots;
use icelens_core::Chart;
use icelens_model::UNet;
use serde::Serialize;

use crate::load;
use crate::model_cmds::{load_model, run};

#[derive(Serialize)]
struct SceneScores {
    scene: String,
    #[serde(flatten)]
    scores: Scores,
}

#[derive(Serialize)]
struct ModelEvaluation {
    model: String,
    pooled: Option<Scores>,
    scenes: Vec<SceneScores>,
}

#[derive(Serialize)]
struct ModelClasses {
    model: String,
    classes: Vec<ClassRow>,
}

#[derive(Serialize)]
struct Breakdown {
    dimensions: Vec<Dimension>,
    ranked_by: Metric,
    models: Vec<String>,
    /// Worst first by the first model's `ranked_by` score (reference classes are in `classes`).
    rows: Vec<ComparisonRow>,
    classes: Vec<ModelClasses>,
}

/// The JSON document: `pooled` and `scenes` are the first model's, as with a single model.
#[derive(Serialize)]
struct Evaluation {
    pooled: Option<Scores>,
    scenes: Vec<SceneScores>,
    models: Vec<ModelEvaluation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breakdown: Option<Breakdown>,
}

/// What `evaluate` was asked for.
pub struct Request<'a> {
    pub models: &'a [PathBuf],
    pub scenes: &'a [PathBuf],
    pub json: bool,
    pub by: Option<&'a str>,
    pub rank: &'a str,
    pub csv: Option<&'a Path>,
    pub plots: Option<&'a Path>,
}

/// The name a model goes by in tables: its file name, as the page shows it.
pub fn model_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

struct Entry {
    name: String,
    net: UNet,
    pooled: [Confusion; 3],
    scenes: Vec<SceneScores>,
    acc: Accumulator,
}

pub fn evaluate(req: &Request) -> Result<(), String> {
    let dims = match req.by {
        Some("all") => Dimension::ALL.to_vec(),
        Some(list) => Dimension::parse_list(list)?,
        None => vec![],
    };
    let rank: Metric = req.rank.parse()?;
    let mut entries = Vec::new();
    for path in req.models {
        let name = model_name(path);
        if entries.iter().any(|e: &Entry| e.name == name) {
            return Err(format!("{}: given twice", path.display()));
        }
        entries.push(Entry {
            net: load_model(path)?,
            acc: Accumulator::new(name.clone(), &dims),
            name,
            pooled: Default::default(),
            scenes: vec![],
        });
    }
    let mut failed = 0;
    let mut metas = Vec::new();
    for (i, path) in req.scenes.iter().enumerate() {
        let result = load(path).and_then(|scene| {
            let charts = scene.charts.as_ref().ok_or_else(|| {
                format!(
                    "{}: has no ice charts (a test-set scene) and cannot be scored",
                    scene.file
                )
            })?;
            metas.push(scene.meta.clone());
            // Every model predicts before any result is kept: a scene counts for all or none.
            let mut preds = Vec::new();
            for e in &entries {
                preds.push(run(&e.net, &scene, i, req.scenes.len())?);
            }
            for (e, pred) in entries.iter_mut().zip(&preds) {
                let maps = [
                    pred.chart(Chart::SIC),
                    pred.chart(Chart::SOD),
                    pred.chart(Chart::FLOE),
                ];
                let conf = confusions(charts, maps);
                if !dims.is_empty() {
                    e.acc.add_scene(&scene, maps)?;
                }
                for (p, c) in e.pooled.iter_mut().zip(&conf) {
                    p.merge(c);
                }
                e.scenes.push(SceneScores {
                    scene: scene.meta.scene.clone(),
                    scores: Scores::from_confusions(&conf),
                });
            }
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("error: {e}");
            failed += 1;
        }
    }

    let breakdown = (!dims.is_empty()).then(|| {
        let accs: Vec<&Accumulator> = entries.iter().map(|e| &e.acc).collect();
        let comparison = Comparison::new(&accs);
        Breakdown {
            dimensions: dims.clone(),
            ranked_by: rank,
            models: comparison.models.clone(),
            rows: comparison.ranked(rank, None),
            classes: if dims.contains(&Dimension::Class) {
                entries
                    .iter()
                    .map(|e| ModelClasses {
                        model: e.name.clone(),
                        classes: e.acc.class_rows(),
                    })
                    .collect()
            } else {
                vec![]
            },
        }
    });
    if let (Some(path), Some(b)) = (req.csv, &breakdown) {
        let csv = Comparison {
            models: b.models.clone(),
            rows: b.rows.clone(),
        }
        .to_csv();
        std::fs::write(path, csv)
            .map_err(|e| format!("{}: cannot be written ({e})", path.display()))?;
    }
    if let (Some(dir), Some(b)) = (req.plots, &breakdown) {
        write_plots(dir, b, &entries, &metas)?;
    }
    let models: Vec<ModelEvaluation> = entries
        .into_iter()
        .map(|e| ModelEvaluation {
            pooled: (!e.scenes.is_empty()).then(|| Scores::from_confusions(&e.pooled)),
            model: e.name,
            scenes: e.scenes,
        })
        .collect();
    let first = &models[0];
    let report = Evaluation {
        pooled: first.pooled,
        scenes: first
            .scenes
            .iter()
            .map(|s| SceneScores {
                scene: s.scene.clone(),
                scores: s.scores,
            })
            .collect(),
        breakdown,
        models,
    };
    if req.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", text(&report));
    }
    if failed > 0 {
        return Err(String::new());
    }
    Ok(())
}

/// One SVG per dimension (scores), per model and chart (confusion), and per scene attribute
/// (how many scenes), drawn by the same code as the page's charts.
fn write_plots(
    dir: &Path,
    b: &Breakdown,
    entries: &[Entry],
    metas: &[icelens_core::SceneMeta],
) -> Result<(), String> {
    let write = |name: String, svg: Result<String, String>| -> Result<(), String> {
        let path = dir.join(name);
        std::fs::write(&path, svg?)
            .map_err(|e| format!("{}: cannot be written ({e})", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for d in b.dimensions.iter().filter(|d| **d != Dimension::Class) {
        write(
            format!("scores_{}.svg", d.key()),
            plots::scores_svg(*d, &b.rows, &b.models, b.ranked_by),
        )?;
    }
    for (i, e) in entries.iter().enumerate() {
        for table in e.acc.confusion_tables() {
            // Names by class value: the chart's classes, then the head's "mask" output.
            let names: Vec<String> = (0..=table.chart.n_classes() as u8)
                .map(|c| class_name(table.chart, c as usize))
                .collect();
            write(
                format!("confusion_{}_{}.svg", i + 1, table.chart.name()),
                plots::confusion_svg(&table, &names),
            )?;
        }
    }
    for (d, groups) in dataset_histograms(metas) {
        write(
            format!("dataset_{}.svg", d.key()),
            plots::histogram_svg(d, &groups),
        )?;
    }
    Ok(())
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{x:.3}")
    }
}

fn text(r: &Evaluation) -> String {
    let mut out = String::new();
    for m in &r.models {
        if r.models.len() > 1 {
            let _ = writeln!(out, "model {}", m.model);
        }
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>9} {:>9} {:>9}",
            "scene", "SIC R²", "SOD F1", "FLOE F1", "combined"
        );
        let mut line = |name: &str, s: &Scores| {
            let _ = writeln!(
                out,
                "{:<24} {:>9} {:>9} {:>9} {:>9}",
                name,
                num(s.SIC),
                num(s.SOD),
                num(s.FLOE),
                num(s.combined)
            );
        };
        for s in &m.scenes {
            line(&s.scene, &s.scores);
        }
        if let Some(p) = &m.pooled {
            line("pooled", p);
        }
        let _ = writeln!(out);
    }
    if let Some(b) = &r.breakdown {
        let _ = writeln!(
            out,
            "Worst conditions by {} (* marks groups too small to trust)",
            b.ranked_by.key()
        );
        let mut header = format!("{:<10} {:<22}", "dimension", "group");
        for m in &b.models {
            let short: String = m.chars().take(18).collect();
            let _ = write!(header, " {:>18}", short);
        }
        let _ = writeln!(out, "{header} {:>10} {:>6}", "pixels", "scenes");
        for row in &b.rows {
            let mut l = format!("{:<10} {:<22}", row.dimension.key(), row.group);
            let mut px = 0;
            let mut scenes = 0;
            let mut small = false;
            for cell in &row.models {
                match cell {
                    Some(c) => {
                        let mut v = num(b.ranked_by.of(&c.scores));
                        if let Some(d) = &c.diff {
                            let d = b.ranked_by.of(d);
                            if !d.is_nan() {
                                v = format!("{v} ({d:+.1})");
                            }
                        }
                        let _ = write!(l, " {v:>18}");
                        px = px.max(*c.pixels.iter().max().unwrap_or(&0));
                        scenes = scenes.max(c.scenes);
                        small |= c.small;
                    }
                    None => {
                        let _ = write!(l, " {:>18}", "—");
                    }
                }
            }
            let _ = writeln!(
                out,
                "{l} {px:>10} {scenes:>6}{}",
                if small { " *" } else { "" }
            );
        }
        for m in &b.classes {
            let _ = writeln!(out, "\nPer reference class, {}", m.model);
            let _ = writeln!(
                out,
                "{:<5} {:<28} {:>9} {:>9} {:>9} {:>10}",
                "chart", "class", "precision", "recall", "F1", "pixels"
            );
            for c in &m.classes {
                let _ = writeln!(
                    out,
                    "{:<5} {:<28} {:>9} {:>9} {:>9} {:>10}",
                    c.chart.name(),
                    c.name,
                    num(c.precision),
                    num(c.recall),
                    num(c.f1),
                    c.support
                );
            }
        }
    }
    out
}
