//! The part of the data a fine-tuning run learns from: chosen scenes, a rectangle of a scene,
//! or the pixels of a condition from the breakdown ("where is it worst"), with optional
//! reweighting of the scenes by a condition such as the ice service.
//!
//! The sampling rule stays the starter kit's (spec §b.4): a source is drawn at random, a
//! window at random inside what it allows, and a patch is rejected unless more than one SIC
//! pixel is labelled. A rectangle bounds where the window lies; a pixel mask (a condition)
//! adds a rejection: the patch's centre must be one of its pixels. Reweighting draws sources
//! with unequal probabilities, like the team's reweighting sampler, so that a rare service or
//! region is seen as often as a common one.
//!
//! A patch ([`Patch`]) is the 24-channel input of a window with its three charts.

use std::sync::Arc;

use icelens_core::breakdown::Dimension;
use icelens_core::chart::CHART_FILL;
use icelens_core::input::Window;
use icelens_core::{Chart, Scene};

use super::{SplitMix64, TrainConfig};
use crate::error::ModelError;

/// Where in a scene patches may come from.
#[derive(Debug, Clone, Default)]
pub enum Area {
    #[default]
    Whole,
    /// A rectangle (lines and samples of the scene); patches lie inside it, or cover it when it
    /// is smaller than a patch.
    Rect(Window),
    /// Row-major pixels (`scene.pixels()` long), e.g. a condition's mask; a patch's centre must
    /// be one of them.
    Pixels(Arc<Vec<bool>>),
}

/// A scene, the part of it to learn from, and how often it is drawn relative to the others.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub scene: &'a Scene,
    pub area: Area,
    /// Relative probability of drawing this source (1 for all: the starter kit's uniform
    /// choice).
    pub weight: f64,
}

impl<'a> Source<'a> {
    pub fn whole(scene: &'a Scene) -> Self {
        Source {
            scene,
            area: Area::Whole,
            weight: 1.0,
        }
    }

    /// The top-left corners a patch may take, as (rows, cols) ranges, or `None` when no
    /// `size x size` patch fits the scene.
    fn corners(&self, size: usize) -> Option<((usize, usize), (usize, usize))> {
        let s = self.scene;
        if s.charts.is_none() || s.lines < size || s.samples < size {
            return None;
        }
        let axis = |len: usize, start: usize, extent: usize| -> (usize, usize) {
            let last = len - size; // largest corner that fits the scene
            if extent >= size {
                let lo = start.min(last);
                let hi = (start + extent - size).min(last);
                (lo, hi)
            } else {
                // Centre the patch on the small rectangle, kept inside the scene.
                let c = (start + extent / 2).saturating_sub(size / 2).min(last);
                (c, c)
            }
        };
        match &self.area {
            Area::Whole | Area::Pixels(_) => Some(((0, s.lines - size), (0, s.samples - size))),
            Area::Rect(w) => {
                if w.height == 0 || w.width == 0 || w.row >= s.lines || w.col >= s.samples {
                    return None;
                }
                let h = w.height.min(s.lines - w.row);
                let wd = w.width.min(s.samples - w.col);
                Some((axis(s.lines, w.row, h), axis(s.samples, w.col, wd)))
            }
        }
    }

    fn usable(&self, size: usize) -> bool {
        self.weight > 0.0
            && self.weight.is_finite()
            && self.corners(size).is_some()
            && match &self.area {
                Area::Pixels(m) => m.len() == self.scene.pixels() && m.iter().any(|p| *p),
                _ => true,
            }
    }
}

/// Scene weights that give every group of a scene-level dimension (service, region, month...)
/// the same total probability: one over the number of scenes in the scene's group.
pub fn balance_weights(scenes: &[&Scene], by: Dimension) -> Result<Vec<f64>, ModelError> {
    if !by.is_scene_level() {
        return Err(ModelError::Settings(format!(
            "cannot balance by {}: it varies inside a scene (use service, region, mission, year, month, season or scene)",
            by.key()
        )));
    }
    let groups: Vec<Option<String>> = scenes.iter().map(|s| by.scene_group(&s.meta)).collect();
    Ok(groups
        .iter()
        .map(|g| 1.0 / groups.iter().filter(|o| *o == g).count() as f64)
        .collect())
}

/// Scene weights that draw every group of a scene-level dimension with a given share, e.g. the
/// test set's shares from the dataset atlas (`icelens dataset`), so that training follows the
/// test distribution: a scene's weight is its group's share over the number of these scenes
/// in the group. Groups without a share, or with share 0 (none in the test set), are not
/// drawn. With the whole training set this is the atlas's weight (test share / training
/// share) up to a constant factor; with fewer scenes the groups still get their shares,
/// which plain per-scene weights would not give.
pub fn share_weights(
    scenes: &[&Scene],
    by: Dimension,
    shares: &std::collections::BTreeMap<String, f64>,
) -> Result<Vec<f64>, ModelError> {
    let counts = balance_weights(scenes, by)?;
    if let Some((g, s)) = shares.iter().find(|(_, s)| !s.is_finite() || **s < 0.0) {
        return Err(ModelError::Data(format!(
            "the share of {} {g} is {s}, not a fraction",
            by.key()
        )));
    }
    let groups: Vec<String> = scenes
        .iter()
        .map(|s| by.scene_group(&s.meta).unwrap_or_default())
        .collect();
    let weights: Vec<f64> = groups
        .iter()
        .zip(counts)
        .map(|(g, per_scene)| shares.get(g).copied().unwrap_or(0.0) * per_scene)
        .collect();
    if weights.iter().all(|w| *w == 0.0) {
        let mut names: Vec<&str> = groups.iter().map(String::as_str).collect();
        names.dedup();
        return Err(ModelError::Data(format!(
            "none of the scenes' {} groups ({}) has a share above 0 in the weights",
            by.key(),
            names.join(", ")
        )));
    }
    Ok(weights)
}

/// Random `size x size` training patches as the starter kit draws them (spec §b.4): a scene
/// uniformly at random (with replacement) for every draw, `row`, `col` uniform in
/// `[0, lines - size)` and `[0, samples - size)` (0 when the side equals `size`), and a patch is
/// rejected unless more than one SIC pixel differs from 255. Scenes without charts or smaller
/// than `size` are never drawn. Deterministic for a seed.
///
/// The input is the inference-time one ([`Scene::input_window`]: the 2 km grid stretched over
/// the whole scene), not the training loader's 11-cell crop (see the module notes). Gives up
/// after `100 * n + 1000` draws and returns the patches found so far (fewer than `n` when the
/// scenes are mostly unlabelled); an error when none of the scenes can give a patch.
pub fn sample_patches(
    scenes: &[&Scene],
    n: usize,
    size: usize,
    seed: u64,
) -> Result<Vec<Patch>, ModelError> {
    let sources: Vec<Source> = scenes.iter().map(|s| Source::whole(s)).collect();
    sample_from(&sources, n, size, seed)
}

/// Training and validation patches for a run: `n` patches of `config.patch_size` in all,
/// `config.val_fraction` of them for validation, seeded by `config.seed`. With two or more
/// labelled scenes the scenes are split (validation patches come from scenes the model does
/// not train on, as in the challenge); with one, its patches are.
pub fn prepare_patches(
    scenes: &[&Scene],
    n: usize,
    config: &TrainConfig,
) -> Result<(Vec<Patch>, Vec<Patch>), ModelError> {
    let sources: Vec<Source> = scenes.iter().map(|s| Source::whole(s)).collect();
    prepare_from(&sources, n, config)
}

/// Random `size x size` patches from the sources, `n` of them when the data allows: the
/// starter kit's rule (see the module notes) within each source's area. Gives up after
/// `100 * n + 1000` draws; an error when no source can give a patch. With every source
/// whole and weighted 1 it is [`sample_patches`], the starter kit's draw, for the same
/// seed.
pub fn sample_from(
    sources: &[Source],
    n: usize,
    size: usize,
    seed: u64,
) -> Result<Vec<Patch>, ModelError> {
    if size == 0 {
        return Err(ModelError::Settings("patch size 0".into()));
    }
    let usable: Vec<&Source> = sources.iter().filter(|s| s.usable(size)).collect();
    if usable.is_empty() {
        return Err(ModelError::Data(format!(
            "no labelled scene area of at least {size} x {size} pixels to draw patches from"
        )));
    }
    let uniform = usable.iter().all(|s| s.weight == usable[0].weight);
    let total: f64 = usable.iter().map(|s| s.weight).sum();
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut draws = 0;
    while out.len() < n && draws < 100 * n + 1000 {
        draws += 1;
        let source = if uniform {
            usable[rng.below(usable.len())]
        } else {
            let mut t = rng.unit() * total;
            let mut pick = usable[usable.len() - 1];
            for s in &usable {
                if t < s.weight {
                    pick = s;
                    break;
                }
                t -= s.weight;
            }
            pick
        };
        let scene = source.scene;
        let Some(((r0, r1), (c0, c1))) = source.corners(size) else {
            continue;
        };
        let pick = |rng: &mut SplitMix64, lo: usize, hi: usize| {
            if hi > lo {
                lo + rng.below(hi - lo)
            } else {
                lo
            }
        };
        let row = pick(&mut rng, r0, r1);
        let col = pick(&mut rng, c0, c1);
        if let Area::Pixels(mask) = &source.area {
            if !mask[(row + size / 2) * scene.samples + col + size / 2] {
                continue;
            }
        }
        let Some(sic) = scene.chart(Chart::SIC) else {
            continue;
        };
        let labelled = (row..row + size)
            .map(|r| {
                sic[r * scene.samples + col..r * scene.samples + col + size]
                    .iter()
                    .filter(|v| **v != CHART_FILL)
                    .count()
            })
            .sum::<usize>();
        if labelled <= 1 {
            continue;
        }
        out.push(Patch::from_window(
            scene,
            Window::new(row, col, size, size),
        )?);
    }
    if out.is_empty() {
        return Err(ModelError::Data(format!(
            "no {size} x {size} patch with labelled pixels in the chosen area"
        )));
    }
    Ok(out)
}

/// Training and validation patches from sources, as [`prepare_patches`] does from
/// whole scenes: with two or more usable sources the sources are split, so validation
/// patches come from scenes (or areas) the model does not train on; with one, its patches are.
pub fn prepare_from(
    sources: &[Source],
    n: usize,
    config: &TrainConfig,
) -> Result<(Vec<Patch>, Vec<Patch>), ModelError> {
    let size = config.patch_size;
    let usable: Vec<Source> = sources.iter().filter(|s| s.usable(size)).cloned().collect();
    let n_val = ((n as f64) * config.val_fraction.clamp(0.0, 1.0)).round() as usize;
    if usable.len() >= 2 && n_val > 0 {
        let (train, val) = split_validation(usable, config.val_fraction, config.seed);
        let train = sample_from(&train, n - n_val, size, config.seed)?;
        let val = sample_from(&val, n_val, size, config.seed ^ 0x5EED)?;
        Ok((train, val))
    } else {
        let all = sample_from(&usable, n, size, config.seed)?;
        Ok(split_validation(all, config.val_fraction, config.seed))
    }
}

/// One training example: the 24-channel input and the three charts of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub height: usize,
    pub width: usize,
    /// `[24, height, width]`, channel-major, as [`Scene::input_window`] builds it.
    pub x: Vec<f32>,
    /// SIC, SOD, FLOE class indices, `height * width` each, 255 where unlabelled.
    pub y: [Vec<u8>; 3],
}

impl Patch {
    /// The patch of a window of a labelled scene.
    pub fn from_window(scene: &Scene, w: Window) -> Result<Patch, ModelError> {
        let charts = scene.charts.as_ref().ok_or_else(|| {
            ModelError::Data("the scene has no ice charts (a test-set file)".into())
        })?;
        let x = scene.input_window(w)?;
        let crop = |c: &Vec<u8>| {
            let mut out = Vec::with_capacity(w.pixels());
            for r in w.row..w.row + w.height {
                let s = r * scene.samples + w.col;
                out.extend_from_slice(&c[s..s + w.width]);
            }
            out
        };
        Ok(Patch {
            height: w.height,
            width: w.width,
            x,
            y: [crop(&charts[0]), crop(&charts[1]), crop(&charts[2])],
        })
    }

    /// Pixels with a SIC label.
    pub fn labelled_sic(&self) -> usize {
        self.y[0].iter().filter(|v| **v != CHART_FILL).count()
    }
}

/// Splits items into (training, validation), `fraction` of them (rounded, at least one when
/// `fraction > 0` and there are two or more, never all) drawn for validation with `seed`; both
/// keep the input order. Use it on scenes when there are several, so that validation patches
/// come from scenes the model does not train on, or on patches otherwise.
pub fn split_validation<T>(items: Vec<T>, fraction: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let n = items.len();
    let mut k = (n as f64 * fraction.clamp(0.0, 1.0)).round() as usize;
    if fraction > 0.0 && n >= 2 {
        k = k.max(1);
    }
    k = k.min(n.saturating_sub(1));
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut idx);
    let val: std::collections::BTreeSet<usize> = idx[..k].iter().copied().collect();
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, item) in items.into_iter().enumerate() {
        if val.contains(&i) {
            valid.push(item);
        } else {
            train.push(item);
        }
    }
    (train, valid)
}
