//! `icelens dataset`: the training and test distributions of a dataset from its file names,
//! the class balance per group from the pixel table, and the reweighting weights.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use icelens_core::dataset::{names_from_listing, parse_names, Atlas, ClassPixels, Facet};
use serde::Serialize;

/// The real dataset's lists and table, shipped with icelens (see assets/datasets/NOTICE.md):
/// what `icelens dataset` shows when given no lists.
const TRAIN: &[u8] = include_bytes!("../../../assets/datasets/train_files.json");
const TEST: &[u8] = include_bytes!("../../../assets/datasets/test_files.json");
const PIXELS: &[u8] = include_bytes!("../../../assets/datasets/train_class_pixels.csv");

/// What `dataset` was asked for.
pub struct Request<'a> {
    pub train: Option<&'a Path>,
    pub test: Option<&'a Path>,
    pub pixels: Option<&'a Path>,
    pub dimension: &'a str,
    pub json: bool,
    pub csv: bool,
}

/// The JSON document: the atlas, and the weights along the chosen dimension.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    atlas: &'a Atlas,
    weights: Weights,
}

#[derive(Serialize)]
struct Weights {
    dimension: Facet,
    /// Group → test share / training share (groups the training set has).
    groups: BTreeMap<String, f64>,
}

/// Names from a list file (JSON or text) or, for a folder, the names of its `.nc` files
/// (the files are not read).
fn names(path: &Path) -> Result<Vec<String>, String> {
    let name = path.display().to_string();
    if path.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|e| format!("{name}: cannot be listed ({e})"))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{name}: cannot be listed ({e})"))?;
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
        return names_from_listing(&name, files).map_err(|e| e.to_string());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    parse_names(&name, &bytes).map_err(|e| e.to_string())
}

pub fn dataset(req: &Request) -> Result<(), String> {
    let facet: Facet = req
        .dimension
        .parse()
        .map_err(|e| format!("--dimension: {e}"))?;
    if req.json && req.csv {
        return Err("give --json or --csv, not both".into());
    }
    let shipped = req.train.is_none() && req.test.is_none();
    let (train, test) = match (req.train, req.test) {
        (Some(a), Some(b)) => (names(a)?, names(b)?),
        (None, None) => (
            parse_names("train_files.json (shipped)", TRAIN).map_err(|e| e.to_string())?,
            parse_names("test_files.json (shipped)", TEST).map_err(|e| e.to_string())?,
        ),
        _ => {
            return Err(
                "give both --train and --test, or neither (the shipped AI4Arctic lists)".into(),
            )
        }
    };
    let pixels = match req.pixels {
        Some(p) => {
            let name = p.display().to_string();
            let bytes = std::fs::read(p).map_err(|e| format!("{name}: cannot be read ({e})"))?;
            Some(ClassPixels::parse(&name, &bytes).map_err(|e| e.to_string())?)
        }
        None if shipped => Some(
            ClassPixels::parse("train_class_pixels.csv (shipped)", PIXELS)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let atlas = Atlas::new(&train, &test, pixels.as_ref());
    if req.csv {
        print!("{}", atlas.to_csv());
    } else if req.json {
        let report = Report {
            atlas: &atlas,
            weights: Weights {
                dimension: facet,
                groups: atlas.facet(facet).weights(),
            },
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", text(&atlas, facet));
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn text(a: &Atlas, chosen: Facet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} training scenes, {} test scenes; shares of each set, weight = test share / training share; <- marks the largest difference",
        a.train_scenes, a.test_scenes
    );
    for t in &a.facets {
        let _ = writeln!(
            out,
            "\n{:<22} {:>6} {:>7} {:>6} {:>7} {:>8} {:>7}",
            t.facet.title(),
            "train",
            "share",
            "test",
            "share",
            "diff",
            "weight"
        );
        for g in &t.groups {
            let _ = writeln!(
                out,
                "{:<22} {:>6} {:>7} {:>6} {:>7} {:>+7.1}pp {:>7}{}",
                g.group,
                g.train,
                pct(g.train_share),
                g.test,
                pct(g.test_share),
                g.difference * 100.0,
                g.weight.map_or("—".to_string(), |w| format!("{w:.3}")),
                if g.most_different { "  <-" } else { "" }
            );
        }
    }
    if let Some(c) = &a.classes {
        let _ = writeln!(
            out,
            "\nClass balance of the training scenes by {} (share of labelled pixels per class; masked = share of all pixels without a class)",
            chosen.key()
        );
        let groups =
            std::iter::once(&c.overall).chain(c.groups.iter().filter(|b| b.facet == Some(chosen)));
        for b in groups {
            let name = &b.group;
            for ch in &b.charts {
                let shares: Vec<String> = ch
                    .shares
                    .iter()
                    .map(|s| format!("{:.1}", s * 100.0))
                    .collect();
                let all = ch.labelled + ch.masked;
                let masked = if all == 0 {
                    0.0
                } else {
                    ch.masked as f64 / all as f64
                };
                let _ = writeln!(
                    out,
                    "{:<22} {:>4} {:>4} scenes  masked {:>6}  classes 0..{}: {}",
                    name,
                    ch.chart.name(),
                    b.scenes,
                    pct(masked),
                    ch.chart.n_classes() - 1,
                    shares.join(" ")
                );
            }
        }
        if !c.train_without_counts.is_empty() {
            let _ = writeln!(
                out,
                "{} training scenes have no pixel counts",
                c.train_without_counts.len()
            );
        }
        if !c.counted_not_listed.is_empty() {
            let _ = writeln!(
                out,
                "left out: pixel counts of {} scenes not in the training list ({})",
                c.counted_not_listed.len(),
                c.counted_not_listed.join(", ")
            );
        }
    }
    out
}
