//! Confusion matrices per (dimension, group), built scene by scene.

use super::*;

/// Sort key of a group: dimension, position within it, name.
pub(super) type GroupKey = (Dimension, u32, String);

pub(super) fn group_key(dimension: Dimension, group: &str) -> GroupKey {
    (dimension, dimension.group_order(group), group.to_string())
}

#[derive(Debug, Clone, Default)]
pub(super) struct GroupAcc {
    pub(super) confusion: [Confusion; 3],
    pub(super) scenes: BTreeSet<String>,
}

pub(super) const KK: usize = K * K;
/// Counters of one group: three charts' K×K matrices.
pub(super) const GROUP: usize = 3 * KK;

/// Adds a block of per-scene counters (three charts' matrices) to a group, if any is set.
pub(super) fn add_block(
    groups: &mut BTreeMap<GroupKey, GroupAcc>,
    dimension: Dimension,
    group: &str,
    scene: &str,
    counts: &[u64],
) {
    if counts.iter().all(|c| *c == 0) {
        return;
    }
    let acc = groups.entry(group_key(dimension, group)).or_default();
    for (chart, block) in counts.chunks_exact(KK).enumerate() {
        for (a, b) in acc.confusion[chart].counts.iter_mut().zip(block) {
            *a += b;
        }
    }
    acc.scenes.insert(scene.to_string());
}

/// Predictions that cannot be scored against a scene.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("{scene}: the {chart} prediction has {got} pixels, the scene {} ({lines} x {samples})", lines * samples)]
    Size {
        scene: String,
        chart: Chart,
        got: usize,
        lines: usize,
        samples: usize,
    },
    #[error("scene {0} was already added")]
    Twice(String),
}

/// The command line reports errors as text; `?` turns this into it there.
impl From<ScoreError> for String {
    fn from(e: ScoreError) -> String {
        e.to_string()
    }
}

pub(super) fn check_pred(scene: &Scene, pred: &[&[u8]; 3]) -> Result<(), ScoreError> {
    for (chart, p) in Chart::ALL.iter().zip(pred) {
        if p.len() != scene.pixels() {
            return Err(ScoreError::Size {
                scene: scene.meta.scene.clone(),
                chart: *chart,
                got: p.len(),
                lines: scene.lines,
                samples: scene.samples,
            });
        }
    }
    Ok(())
}

/// Confusion matrices of one model, per (dimension, group), built scene by scene.
#[derive(Debug, Clone)]
pub struct Accumulator {
    pub(super) model: String,
    pub(super) dimensions: Vec<Dimension>,
    pub(super) groups: BTreeMap<GroupKey, GroupAcc>,
    pub(super) total: [Confusion; 3],
    pub(super) scenes: Vec<String>,
}

impl Accumulator {
    /// An empty accumulator that tracks the given dimensions.
    pub fn new(model: impl Into<String>, dimensions: &[Dimension]) -> Self {
        let mut dims: Vec<Dimension> = Vec::new();
        for d in dimensions {
            if !dims.contains(d) {
                dims.push(*d);
            }
        }
        Accumulator {
            model: model.into(),
            dimensions: dims,
            groups: BTreeMap::new(),
            total: Default::default(),
            scenes: Vec::new(),
        }
    }

    /// An empty accumulator tracking every dimension.
    pub fn all(model: impl Into<String>) -> Self {
        Self::new(model, &Dimension::ALL)
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Shows the counts under another name (the page labels a loaded result apart from a
    /// model of the same name it runs itself).
    pub fn set_model(&mut self, name: impl Into<String>) {
        self.model = name.into();
    }

    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// Names of the scenes added, in order.
    pub fn scenes(&self) -> &[String] {
        &self.scenes
    }

    /// Adds a scene's predictions (argmax class maps, row-major, SIC/SOD/FLOE). Returns
    /// `Ok(false)` for a scene without charts (nothing to score), an error if a prediction
    /// does not match the scene's size or the scene (by name) was already added.
    ///
    /// One pass over the pixels, with fixed-size counters per band and chart: no allocation
    /// and no map lookups per pixel.
    pub fn add_scene(&mut self, scene: &Scene, pred: [&[u8]; 3]) -> Result<bool, ScoreError> {
        let Some(charts) = scene.charts.as_ref() else {
            return Ok(false);
        };
        check_pred(scene, &pred)?;
        let name = Dimension::Scene
            .scene_group(&scene.meta)
            .unwrap_or_default();
        if self.scenes.contains(&name) {
            return Err(ScoreError::Twice(name));
        }
        let n = scene.pixels();
        let has = |d: Dimension| self.dimensions.contains(&d);
        let (track_land, track_inc, track_class) = (
            has(Dimension::Land),
            has(Dimension::Incidence),
            has(Dimension::Class),
        );
        let mut whole = vec![0u64; GROUP];
        let mut land = vec![0u64; LAND_GROUPS.len() * GROUP];
        let mut inc = vec![0u64; INCIDENCE_GROUPS.len() * GROUP];
        // Block (chart c, reference class k of chart c) at (c·K + k)·GROUP.
        let mut class = vec![0u64; 3 * K * GROUP];
        let t = [&charts[0][..n], &charts[1][..n], &charts[2][..n]];
        let p = [&pred[0][..n], &pred[1][..n], &pred[2][..n]];
        let (hh, angle, dist) = (&scene.sar[0][..n], &scene.sar[2][..n], &scene.sar[3][..n]);
        for i in 0..n {
            let ti = [t[0][i], t[1][i], t[2][i]];
            if ti == [CHART_FILL; 3] {
                continue;
            }
            let lb = if track_land {
                land_band(dist[i]) as usize
            } else {
                0
            };
            let ib = if track_inc {
                incidence_band(hh[i], angle[i]) as usize
            } else {
                0
            };
            for c in 0..3 {
                if ti[c] == CHART_FILL {
                    continue;
                }
                let cell = c * KK + (ti[c] as usize).min(K - 1) * K + (p[c][i] as usize).min(K - 1);
                whole[cell] += 1;
                if track_land {
                    land[lb * GROUP + cell] += 1;
                }
                if track_inc {
                    inc[ib * GROUP + cell] += 1;
                }
                if track_class {
                    for (c2, t2) in ti.iter().enumerate() {
                        if *t2 != CHART_FILL {
                            class[(c2 * K + (*t2 as usize).min(K - 1)) * GROUP + cell] += 1;
                        }
                    }
                }
            }
        }

        for (chart, block) in whole.chunks_exact(KK).enumerate() {
            for (a, b) in self.total[chart].counts.iter_mut().zip(block) {
                *a += b;
            }
        }
        let dims = self.dimensions.clone();
        for d in dims {
            if let Some(group) = d.scene_group(&scene.meta) {
                // A scene-level group exists for every labelled scene, even one whose charts
                // are all 255 (its scores are then NaN).
                let acc = self.groups.entry(group_key(d, &group)).or_default();
                for (chart, block) in whole.chunks_exact(KK).enumerate() {
                    for (a, b) in acc.confusion[chart].counts.iter_mut().zip(block) {
                        *a += b;
                    }
                }
                acc.scenes.insert(name.clone());
                continue;
            }
            match d {
                Dimension::Land => {
                    for (b, g) in LAND_GROUPS.iter().enumerate() {
                        let block = &land[b * GROUP..(b + 1) * GROUP];
                        add_block(&mut self.groups, d, g, &name, block);
                    }
                }
                Dimension::Incidence => {
                    for (b, g) in INCIDENCE_GROUPS.iter().enumerate() {
                        let block = &inc[b * GROUP..(b + 1) * GROUP];
                        add_block(&mut self.groups, d, g, &name, block);
                    }
                }
                _ => {
                    for chart in Chart::ALL {
                        for k in 0..K {
                            let at = (chart as usize * K + k) * GROUP;
                            let block = &class[at..at + GROUP];
                            add_block(&mut self.groups, d, &class_group(chart, k), &name, block);
                        }
                    }
                }
            }
        }
        self.scenes.push(name);
        Ok(true)
    }

    /// The breakdown: one row per (dimension, group) seen, dimensions in [`Dimension::ALL`]
    /// order, groups in their natural order.
    pub fn rows(&self) -> Vec<Row> {
        self.groups
            .iter()
            .map(|((d, _, g), acc)| Row::new(*d, g, acc))
            .collect()
    }

    /// The rows of one dimension.
    pub fn rows_of(&self, dimension: Dimension) -> Vec<Row> {
        self.groups
            .iter()
            .filter(|((d, _, _), _)| *d == dimension)
            .map(|((d, _, g), acc)| Row::new(*d, g, acc))
            .collect()
    }

    /// The confusion matrices of one condition, if it was seen.
    pub fn confusion_of(&self, condition: &Condition) -> Option<&[Confusion; 3]> {
        self.groups
            .get(&group_key(condition.dimension, &condition.group))
            .map(|a| &a.confusion)
    }

    /// All labelled pixels of all scenes: the matrices behind the challenge's score.
    pub fn confusions(&self) -> &[Confusion; 3] {
        &self.total
    }

    /// The challenge's pooled score over every scene added ([`Scores::from_confusions`]).
    pub fn scores(&self) -> Scores {
        Scores::from_confusions(&self.total)
    }

    /// Per-class precision/recall/F1 over every scene added.
    pub fn class_rows(&self) -> Vec<ClassRow> {
        class_rows(&self.total)
    }

    /// The three overall confusion matrices as tables.
    pub fn confusion_tables(&self) -> Vec<ConfusionTable> {
        confusion_tables(&self.total)
    }
}

impl Accumulator {
    /// The same counts, keeping only the groups of `dimensions` (in that order): the breakdown
    /// a run with `--by` those dimensions would have built.
    pub fn restricted(&self, dimensions: &[Dimension]) -> Accumulator {
        let mut out = self.clone();
        out.dimensions = Accumulator::new("", dimensions).dimensions;
        out.groups.retain(|(d, _, _), _| dimensions.contains(d));
        out
    }
}
