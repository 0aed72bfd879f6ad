//! `icelens evaluate`: the challenge's scores per scene and pooled, for one model or several,
//! and with `--by` the breakdown by condition the page shows (same core, same numbers).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use icelens_core::breakdown::{
    class_name, dataset_histograms, merge_partials, Accumulator, ClassRow, Comparison,
    ComparisonRow, Dimension, FailedScene, Metric, Partial, PartialScene,
};
use icelens_core::metrics::{confusions, Confusion, Scores};
use icelens_core::plots;
use icelens_core::shard::{file_name, Shard};
use icelens_core::Chart;
use icelens_model::UNet;
use serde::Serialize;

use crate::inputs::{load, load_model_with_fingerprint, model_name};
use crate::model_cmds::run;

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
    /// Only this shard of the (sorted) scene list.
    pub shard: Option<Shard>,
    /// Also write what `icelens merge` needs here.
    pub partial: Option<&'a Path>,
    /// How each scene is run (memory budget or tiles).
    pub plan: crate::memory::Plan,
}

/// One model's results, from a run or from merged parts: everything the report is made of.
pub struct ModelResult {
    pub name: String,
    /// (short scene name, SIC/SOD/FLOE matrices) per scored scene, in report order.
    pub scenes: Vec<(String, [Confusion; 3])>,
    /// The breakdown's counts (at least the dimensions reported).
    pub acc: Accumulator,
}

struct Entry {
    fingerprint: String,
    net: UNet,
    result: ModelResult,
}

fn parse_dims(by: Option<&str>) -> Result<Vec<Dimension>, String> {
    match by {
        Some("all") => Ok(Dimension::ALL.to_vec()),
        Some(list) => Dimension::parse_list(list),
        None => Ok(vec![]),
    }
}

pub fn evaluate(req: &Request) -> Result<(), String> {
    let dims = parse_dims(req.by)?;
    let rank: Metric = req.rank.parse()?;
    // A part counts every dimension, so that `merge --by` can ask for any of them.
    let counted: Vec<Dimension> = if req.partial.is_some() {
        Dimension::ALL.to_vec()
    } else {
        dims.clone()
    };
    let mut entries: Vec<Entry> = Vec::new();
    for path in req.models {
        let name = model_name(path);
        if entries.iter().any(|e| e.result.name == name) {
            return Err(format!("{}: given twice", path.display()));
        }
        let (net, fingerprint) = load_model_with_fingerprint(path)?;
        entries.push(Entry {
            net,
            fingerprint,
            result: ModelResult {
                acc: Accumulator::new(name.clone(), &counted),
                name,
                scenes: vec![],
            },
        });
    }
    let paths: Vec<PathBuf> = match req.shard {
        Some(shard) => {
            let mine = shard.select(req.scenes);
            eprintln!(
                "shard {shard}: {} of {} scenes",
                mine.len(),
                req.scenes.len()
            );
            mine
        }
        None => req.scenes.to_vec(),
    };
    let mut part = Partial::new(req.shard, &counted);
    let mut metas = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let result = load(path).and_then(|scene| {
            let charts = scene.charts.as_ref().ok_or_else(|| {
                format!(
                    "{}: has no ice charts (a test-set scene) and cannot be scored",
                    scene.file
                )
            })?;
            let name = &scene.meta.scene;
            if part.scenes.iter().any(|s| &s.scene == name) {
                return Err(format!("{}: scene {name} was given twice", scene.file));
            }
            // Every model predicts before any result is kept: a scene counts for all or none.
            let mut preds = Vec::new();
            for e in &entries {
                preds.push(run(&e.net, &scene, i, paths.len(), req.plan)?);
            }
            for (e, pred) in entries.iter_mut().zip(&preds) {
                let maps = [
                    pred.chart(Chart::SIC),
                    pred.chart(Chart::SOD),
                    pred.chart(Chart::FLOE),
                ];
                if !counted.is_empty() {
                    e.result.acc.add_scene(&scene, maps)?;
                }
                e.result
                    .scenes
                    .push((name.clone(), confusions(charts, maps)));
            }
            part.scenes.push(PartialScene {
                file: file_name(path),
                scene: name.clone(),
            });
            metas.push(scene.meta.clone());
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("error: {e}");
            part.failed.push(FailedScene {
                file: file_name(path),
                error: e,
            });
        }
    }
    if let Some(out) = req.partial {
        for e in &entries {
            let scenes: Vec<[Confusion; 3]> =
                e.result.scenes.iter().map(|(_, c)| c.clone()).collect();
            part.push_model(e.fingerprint.clone(), &e.result.acc, &scenes);
        }
        std::fs::write(out, part.to_json())
            .map_err(|e| format!("{}: cannot be written ({e})", out.display()))?;
        eprintln!(
            "wrote {} ({} scenes scored, {} failed)",
            out.display(),
            part.scenes.len(),
            part.failed.len()
        );
    }
    let results: Vec<ModelResult> = entries.into_iter().map(|e| e.result).collect();
    let report = build_report(&results, &dims, rank);
    if let (Some(dir), Some(b)) = (req.plots, &report.breakdown) {
        write_plots(dir, b, &results, &metas)?;
    }
    print_report(&report, req.json, req.csv)?;
    // With --partial the failures travel in the part and `merge` reports them; a zero exit
    // lets a dependent merge job (Slurm's afterok) run.
    if !part.failed.is_empty() && req.partial.is_none() {
        return Err(String::new());
    }
    Ok(())
}

/// What `merge` was asked for.
pub struct MergeRequest<'a> {
    pub parts: &'a [PathBuf],
    pub json: bool,
    pub by: Option<&'a str>,
    pub rank: &'a str,
    pub csv: Option<&'a Path>,
    pub out: Option<&'a Path>,
}

/// `icelens merge`: pools the parts `evaluate --partial` wrote and prints what one `evaluate`
/// over all their scenes (in file-name order) prints.
pub fn merge(req: &MergeRequest) -> Result<(), String> {
    let dims = parse_dims(req.by)?;
    let rank: Metric = req.rank.parse()?;
    let mut parts = Vec::new();
    for path in req.parts {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
        let part = Partial::from_json(&name, &bytes).map_err(|e| e.to_string())?;
        parts.push((name, part));
    }
    let merged = merge_partials(&parts).map_err(|e| e.to_string())?;
    if let Some(out) = req.out {
        let name = out.display().to_string();
        std::fs::write(out, merged.to_partial().to_json())
            .map_err(|e| format!("{name}: cannot be written ({e})"))?;
    }
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    merged
        .require(&dims, &names.join(", "))
        .map_err(|e| e.to_string())?;
    let results: Vec<ModelResult> = merged
        .models
        .into_iter()
        .map(|m| ModelResult {
            name: m.name,
            scenes: m.scenes,
            acc: m.accumulator,
        })
        .collect();
    let report = build_report(&results, &dims, rank);
    print_report(&report, req.json, req.csv)?;
    for f in &merged.failed {
        eprintln!("error: {}", f.error);
    }
    if !merged.failed.is_empty() {
        return Err(String::new());
    }
    Ok(())
}

/// The report of models' results: the same for a run and for merged parts.
fn build_report(results: &[ModelResult], dims: &[Dimension], rank: Metric) -> Evaluation {
    let breakdown = (!dims.is_empty()).then(|| {
        let accs: Vec<Accumulator> = results.iter().map(|r| r.acc.restricted(dims)).collect();
        let refs: Vec<&Accumulator> = accs.iter().collect();
        let comparison = Comparison::new(&refs);
        Breakdown {
            dimensions: dims.to_vec(),
            ranked_by: rank,
            models: comparison.models.clone(),
            rows: comparison.ranked(rank, None),
            classes: if dims.contains(&Dimension::Class) {
                results
                    .iter()
                    .map(|r| ModelClasses {
                        model: r.name.clone(),
                        classes: r.acc.class_rows(),
                    })
                    .collect()
            } else {
                vec![]
            },
        }
    });
    let models: Vec<ModelEvaluation> = results
        .iter()
        .map(|r| {
            let mut pooled: [Confusion; 3] = Default::default();
            for (_, c) in &r.scenes {
                for (p, s) in pooled.iter_mut().zip(c) {
                    p.merge(s);
                }
            }
            ModelEvaluation {
                pooled: (!r.scenes.is_empty()).then(|| Scores::from_confusions(&pooled)),
                model: r.name.clone(),
                scenes: r
                    .scenes
                    .iter()
                    .map(|(scene, c)| SceneScores {
                        scene: scene.clone(),
                        scores: Scores::from_confusions(c),
                    })
                    .collect(),
            }
        })
        .collect();
    let first = &models[0];
    Evaluation {
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
    }
}

fn print_report(report: &Evaluation, json: bool, csv: Option<&Path>) -> Result<(), String> {
    if let (Some(path), Some(b)) = (csv, &report.breakdown) {
        let csv = Comparison {
            models: b.models.clone(),
            rows: b.rows.clone(),
        }
        .to_csv();
        std::fs::write(path, csv)
            .map_err(|e| format!("{}: cannot be written ({e})", path.display()))?;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", text(report));
    }
    Ok(())
}

/// One SVG per dimension (scores), per model and chart (confusion), and per scene attribute
/// (how many scenes), drawn by the same code as the page's charts.
fn write_plots(
    dir: &Path,
    b: &Breakdown,
    results: &[ModelResult],
    metas: &[icelens_core::SceneMeta],
) -> Result<(), String> {
    let write = |name: String, svg: Result<String, plots::PlotError>| -> Result<(), String> {
        let path = dir.join(name);
        let svg = svg.map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(&path, svg)
            .map_err(|e| format!("{}: cannot be written ({e})", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for d in b.dimensions.iter().filter(|d| **d != Dimension::Class) {
        write(
            format!("scores_{}.svg", d.key()),
            plots::scores_svg(*d, &b.rows, &b.models, b.ranked_by),
        )?;
    }
    for (i, r) in results.iter().enumerate() {
        for table in r.acc.confusion_tables() {
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
