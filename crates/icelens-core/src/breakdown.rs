//! Errors by condition: the challenge's scores broken down by scene metadata (spec §g.1),
//! distance to land, incidence angle and reference class, for one model or several side by
//! side; a coarse map of where in a scene the errors are; and the dataset's composition.
//!
//! Everything is pooled the way the challenge pools (§e.2): a group's score is computed once
//! on all of its labelled pixels from all scenes (confusion matrices added up), not averaged
//! over scenes. Pixels whose reference is 255 are dropped per chart, so SIC, SOD and FLOE of
//! one group can have different pixel counts.
//!
//! Two kinds of dimension:
//! - scene-level ([`Dimension::Scene`] … [`Dimension::Season`]): a scene belongs to one group
//!   (from [`SceneMeta`]; a field that could not be read is `"unknown"`), with all its pixels;
//! - per-pixel ([`Dimension::Land`], [`Dimension::Incidence`], [`Dimension::Class`]): each
//!   labelled pixel belongs to the band of its own distance-to-land id, incidence angle or
//!   reference class.
//!
//! No UI code: the types are plain data, serde-serialisable (NaN becomes `null` in JSON), and
//! [`condition_mask`] tells a viewer which pixels to highlight for a row.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, CHART_FILL};
use crate::meta::SceneMeta;
use crate::metrics::{round3, Confusion, Scores, K};
use crate::scene::Scene;

/// Raw-unit mean and standard deviation of `distance_map` (§b.2): zone id = z·std + mean.
pub const DISTANCE_MEAN_STD: (f64, f64) = (23.627669500714102, 14.99018630794473);

/// Raw-unit mean and standard deviation of `sar_incidenceangle` (§b.2): degrees = z·std + mean.
pub const INCIDENCE_MEAN_STD: (f64, f64) = (33.99801788456536, 8.322267212079046);

/// A group is flagged [`Row::small`] when its best-covered chart has fewer labelled pixels.
pub const SMALL_PIXELS: u64 = 10_000;

/// A group of a dimension other than [`Dimension::Scene`] is flagged [`Row::small`] when
/// fewer scenes than this contribute to it: its score then describes one scene, not a
/// condition.
pub const SMALL_SCENES: usize = 2;

/// Group name for scene metadata that could not be read.
pub const UNKNOWN: &str = "unknown";

/// Distance-to-land bands, by `distance_map` zone id (§a.3): id 0 is land (charts are 255
/// there, so the band only appears if a labelled pixel has it); ids 1–3 are 0–2 km, 4–11 are
/// 2–10 km, 12–27 are 10–50 km and 28–41 are beyond 50 km (ids above 41 count there too); a
/// non-finite value is `"unknown"`.
pub const LAND_GROUPS: [&str; 6] = [
    "land",
    "0-2 km",
    "2-10 km",
    "10-50 km",
    "over 50 km",
    "unknown",
];

/// Incidence-angle band limits in degrees: near is below the first, far from the second on.
///
/// Sentinel-1 EW mode spans about 19°–47° across its swath; 30° and 38° cut it into a near
/// third (~19–30°, sub-swaths EW1–EW2, strongest backscatter and the largest HH/HV contrast),
/// a middle third and a far third (~38–47°, lowest backscatter, where the HV noise floor
/// matters most), rounded to whole degrees.
pub const INCIDENCE_LIMITS_DEG: (f64, f64) = (30.0, 38.0);

/// Incidence-angle bands. Only pixels with SAR data ([`Scene::is_valid`]) get an angle band;
/// labelled pixels without SAR data (or with a non-finite angle) form `"no SAR data"`.
pub const INCIDENCE_GROUPS: [&str; 4] =
    ["near (<30°)", "mid (30-38°)", "far (>=38°)", "no SAR data"];

/// Meteorological seasons of the Northern hemisphere, from the acquisition month.
pub const SEASON_GROUPS: [&str; 4] = ["DJF winter", "MAM spring", "JJA summer", "SON autumn"];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// What scores are broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// Each scene on its own (short scene name).
    Scene,
    /// Ice service, `dmi` or `cis`.
    Service,
    /// Ice chart region.
    Region,
    /// Sentinel-1 unit, `S1A` or `S1B`.
    Mission,
    /// Acquisition year.
    Year,
    /// Acquisition month, `"01 Jan"` … `"12 Dec"`.
    Month,
    /// Acquisition season, [`SEASON_GROUPS`].
    Season,
    /// Distance to land, [`LAND_GROUPS`] (per pixel).
    Land,
    /// Incidence angle, [`INCIDENCE_GROUPS`] (per pixel).
    Incidence,
    /// Reference class of one chart, `"SOD 3"` (per pixel).
    Class,
}

impl Dimension {
    pub const ALL: [Dimension; 10] = [
        Dimension::Scene,
        Dimension::Service,
        Dimension::Region,
        Dimension::Mission,
        Dimension::Year,
        Dimension::Month,
        Dimension::Season,
        Dimension::Land,
        Dimension::Incidence,
        Dimension::Class,
    ];

    /// The word used on command lines, in JSON and CSV.
    pub fn key(self) -> &'static str {
        match self {
            Dimension::Scene => "scene",
            Dimension::Service => "service",
            Dimension::Region => "region",
            Dimension::Mission => "mission",
            Dimension::Year => "year",
            Dimension::Month => "month",
            Dimension::Season => "season",
            Dimension::Land => "land",
            Dimension::Incidence => "incidence",
            Dimension::Class => "class",
        }
    }

    /// Heading for tables.
    pub fn title(self) -> &'static str {
        match self {
            Dimension::Scene => "Scene",
            Dimension::Service => "Ice service",
            Dimension::Region => "Region",
            Dimension::Mission => "Mission",
            Dimension::Year => "Year",
            Dimension::Month => "Month",
            Dimension::Season => "Season",
            Dimension::Land => "Distance to land",
            Dimension::Incidence => "Incidence angle",
            Dimension::Class => "Reference class",
        }
    }

    /// Whether whole scenes (rather than pixels) fall into the groups.
    pub fn is_scene_level(self) -> bool {
        !matches!(
            self,
            Dimension::Land | Dimension::Incidence | Dimension::Class
        )
    }

    /// Parses a comma-separated list of keys (case and spaces ignored, repeats dropped);
    /// `all` stands for every dimension.
    pub fn parse_list(list: &str) -> Result<Vec<Dimension>, String> {
        let mut out: Vec<Dimension> = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let found: Vec<Dimension> = if word.eq_ignore_ascii_case("all") {
                Dimension::ALL.to_vec()
            } else {
                vec![word.parse::<Dimension>()?]
            };
            for d in found {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        if out.is_empty() {
            return Err(format!("no dimension given; valid: {}", valid_keys()));
        }
        Ok(out)
    }

    /// The group a scene falls into, for scene-level dimensions; `None` for per-pixel ones.
    pub fn scene_group(self, meta: &SceneMeta) -> Option<String> {
        let text = |v: &Option<String>| SceneMeta::or_unknown(v).to_string();
        let month = meta
            .acquired
            .map(|t| t.month)
            .filter(|m| (1..=12).contains(m));
        Some(match self {
            Dimension::Scene if meta.scene.is_empty() => UNKNOWN.to_string(),
            Dimension::Scene => meta.scene.clone(),
            Dimension::Service => text(&meta.ice_service),
            Dimension::Region => text(&meta.region),
            Dimension::Mission => text(&meta.mission),
            Dimension::Year => meta
                .acquired
                .map(|t| t.year.to_string())
                .unwrap_or_else(|| UNKNOWN.to_string()),
            Dimension::Month => month
                .map(|m| format!("{m:02} {}", MONTHS[m as usize - 1]))
                .unwrap_or_else(|| UNKNOWN.to_string()),
            Dimension::Season => month
                .map(|m| SEASON_GROUPS[(m as usize % 12) / 3].to_string())
                .unwrap_or_else(|| UNKNOWN.to_string()),
            Dimension::Land | Dimension::Incidence | Dimension::Class => return None,
        })
    }

    /// Sort position of a group within the dimension: bands, seasons and classes in their
    /// natural order, `"unknown"` last, the rest alphabetically (months and years sort as text).
    fn group_order(self, group: &str) -> u32 {
        let fixed = |list: &[&str]| {
            list.iter()
                .position(|g| *g == group)
                .map_or(u32::MAX, |i| i as u32)
        };
        match self {
            Dimension::Land => fixed(&LAND_GROUPS),
            Dimension::Incidence => fixed(&INCIDENCE_GROUPS),
            Dimension::Season => fixed(&SEASON_GROUPS),
            Dimension::Class => {
                parse_class_group(group).map_or(u32::MAX, |(c, k)| c as u32 * 256 + k as u32)
            }
            _ => u32::from(group == UNKNOWN),
        }
    }
}

fn valid_keys() -> String {
    let keys: Vec<&str> = Dimension::ALL.iter().map(|d| d.key()).collect();
    format!("{} (or all)", keys.join(", "))
}

impl FromStr for Dimension {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        Dimension::ALL
            .into_iter()
            .find(|d| d.key().eq_ignore_ascii_case(word))
            .ok_or_else(|| format!("unknown dimension \"{word}\"; valid: {}", valid_keys()))
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `"SOD 3"` → (SOD, 3).
fn parse_class_group(group: &str) -> Option<(Chart, u8)> {
    let (chart, class) = group.trim().split_once(' ')?;
    Some((Chart::from_name(chart)?, class.trim().parse().ok()?))
}

fn class_group(chart: Chart, class: usize) -> String {
    format!("{} {class}", chart.name())
}

/// Distance-to-land zone id of a stored (standard scaled) `distance_map` value, rounded to
/// the nearest integer; `None` if the value is not finite.
pub fn distance_id(z: f32) -> Option<i64> {
    let (mean, std) = DISTANCE_MEAN_STD;
    let id = (z as f64 * std + mean).round();
    id.is_finite().then_some(id as i64)
}

/// Index into [`LAND_GROUPS`] of a stored `distance_map` value.
#[inline]
pub fn land_band(z: f32) -> u8 {
    match distance_id(z) {
        None => 5,
        Some(id) if id <= 0 => 0,
        Some(1..=3) => 1,
        Some(4..=11) => 2,
        Some(12..=27) => 3,
        Some(_) => 4,
    }
}

/// Incidence angle in degrees of a stored (standard scaled) `sar_incidenceangle` value.
pub fn incidence_deg(z: f32) -> f64 {
    let (mean, std) = INCIDENCE_MEAN_STD;
    z as f64 * std + mean
}

/// Index into [`INCIDENCE_GROUPS`] of a pixel, from its stored HH and incidence values.
#[inline]
pub fn incidence_band(hh: f32, z: f32) -> u8 {
    let deg = incidence_deg(z);
    if hh == 0.0 || !deg.is_finite() {
        3
    } else if deg < INCIDENCE_LIMITS_DEG.0 {
        0
    } else if deg < INCIDENCE_LIMITS_DEG.1 {
        1
    } else {
        2
    }
}

/// One group of one dimension: a row of the breakdown, a set of pixels to highlight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Condition {
    pub dimension: Dimension,
    pub group: String,
}

impl Condition {
    pub fn new(dimension: Dimension, group: impl Into<String>) -> Self {
        Condition {
            dimension,
            group: group.into(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.dimension, self.group)
    }
}

/// The pixels of a scene that belong to a condition (row-major, `scene.pixels()` long).
///
/// Scene-level conditions select every pixel of a matching scene and none of another. Land
/// and incidence bands select every pixel in the band, labelled or not; a class selects the
/// pixels whose reference in that chart is the class (none in an unlabelled scene). The
/// breakdown's scores use only the labelled pixels among them.
pub fn condition_mask(scene: &Scene, condition: &Condition) -> Vec<bool> {
    let n = scene.pixels();
    let d = condition.dimension;
    if let Some(group) = d.scene_group(&scene.meta) {
        return vec![group == condition.group; n];
    }
    let position = |list: &[&str]| list.iter().position(|g| *g == condition.group);
    match d {
        Dimension::Land => match position(&LAND_GROUPS) {
            Some(b) => scene.sar[3][..n]
                .iter()
                .map(|z| land_band(*z) as usize == b)
                .collect(),
            None => vec![false; n],
        },
        Dimension::Incidence => match position(&INCIDENCE_GROUPS) {
            Some(b) => scene.sar[0][..n]
                .iter()
                .zip(&scene.sar[2][..n])
                .map(|(hh, z)| incidence_band(*hh, *z) as usize == b)
                .collect(),
            None => vec![false; n],
        },
        _ => match (parse_class_group(&condition.group), scene.charts.as_ref()) {
            (Some((chart, class)), Some(charts)) => charts[chart as usize][..n]
                .iter()
                .map(|t| *t == class && *t != CHART_FILL)
                .collect(),
            _ => vec![false; n],
        },
    }
}

/// Every condition a pixel belongs to (for a tooltip); classes only where the pixel has a
/// reference.
pub fn conditions_at(scene: &Scene, index: usize) -> Vec<Condition> {
    let mut out: Vec<Condition> = Dimension::ALL
        .iter()
        .filter_map(|d| Some(Condition::new(*d, d.scene_group(&scene.meta)?)))
        .collect();
    if index >= scene.pixels() {
        return out;
    }
    out.push(Condition::new(
        Dimension::Land,
        LAND_GROUPS[land_band(scene.sar[3][index]) as usize],
    ));
    out.push(Condition::new(
        Dimension::Incidence,
        INCIDENCE_GROUPS[incidence_band(scene.sar[0][index], scene.sar[2][index]) as usize],
    ));
    if let Some(charts) = &scene.charts {
        for chart in Chart::ALL {
            let t = charts[chart as usize][index];
            if t != CHART_FILL {
                out.push(Condition::new(
                    Dimension::Class,
                    class_group(chart, t as usize),
                ));
            }
        }
    }
    out
}

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

    fn new(dimension: Dimension, group: &str, acc: &GroupAcc) -> Row {
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
fn worst_first(a: f64, b: f64) -> std::cmp::Ordering {
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

/// Sort key of a group: dimension, position within it, name.
type GroupKey = (Dimension, u32, String);

fn group_key(dimension: Dimension, group: &str) -> GroupKey {
    (dimension, dimension.group_order(group), group.to_string())
}

#[derive(Debug, Clone, Default)]
struct GroupAcc {
    confusion: [Confusion; 3],
    scenes: BTreeSet<String>,
}

const KK: usize = K * K;
/// Counters of one group: three charts' K×K matrices.
const GROUP: usize = 3 * KK;

/// Adds a block of per-scene counters (three charts' matrices) to a group, if any is set.
fn add_block(
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

fn check_pred(scene: &Scene, pred: &[&[u8]; 3]) -> Result<(), String> {
    for (chart, p) in Chart::ALL.iter().zip(pred) {
        if p.len() != scene.pixels() {
            return Err(format!(
                "{}: the {chart} prediction has {} pixels, the scene {} ({} x {})",
                scene.meta.scene,
                p.len(),
                scene.pixels(),
                scene.lines,
                scene.samples
            ));
        }
    }
    Ok(())
}

/// Confusion matrices of one model, per (dimension, group), built scene by scene.
#[derive(Debug, Clone)]
pub struct Accumulator {
    model: String,
    dimensions: Vec<Dimension>,
    groups: BTreeMap<GroupKey, GroupAcc>,
    total: [Confusion; 3],
    scenes: Vec<String>,
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
    pub fn add_scene(&mut self, scene: &Scene, pred: [&[u8]; 3]) -> Result<bool, String> {
        let Some(charts) = scene.charts.as_ref() else {
            return Ok(false);
        };
        check_pred(scene, &pred)?;
        let name = Dimension::Scene
            .scene_group(&scene.meta)
            .unwrap_or_default();
        if self.scenes.contains(&name) {
            return Err(format!("scene {name} was already added"));
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

fn diff(a: &Scores, base: &Scores) -> Scores {
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[allow(clippy::too_many_arguments)]
fn csv_line(
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

/// Where in a scene the errors are: a grid of square cells with a combined error each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileGrid {
    /// Cell size in pixels (the last row and column may be smaller).
    pub cell: usize,
    /// Scene size.
    pub lines: usize,
    pub samples: usize,
    pub rows: usize,
    pub cols: usize,
    /// Row-major, 0 (all right) … 1; NaN where the cell has no labelled pixel. Per chart:
    /// SIC mean |reference − prediction| / 10 (predictions above 10 count as 10), SOD and
    /// FLOE the share of mismatches; combined with the challenge's weights 2/2/1 over the
    /// charts that have labelled pixels in the cell.
    pub error: Vec<f32>,
    /// Pixels labelled in at least one chart, per cell.
    pub pixels: Vec<u32>,
}

impl TileGrid {
    pub fn error_at(&self, row: usize, col: usize) -> f32 {
        self.error[row * self.cols + col]
    }

    /// Pixel ranges `(lines, samples)` of a cell.
    pub fn bounds(
        &self,
        row: usize,
        col: usize,
    ) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let l0 = row * self.cell;
        let s0 = col * self.cell;
        (
            l0..(l0 + self.cell).min(self.lines),
            s0..(s0 + self.cell).min(self.samples),
        )
    }
}

/// The error grid of a scene's predictions, cells of `cell` × `cell` pixels (0 counts as 1).
/// A scene without charts gives an all-NaN grid.
pub fn tile_errors(scene: &Scene, pred: [&[u8]; 3], cell: usize) -> Result<TileGrid, String> {
    check_pred(scene, &pred)?;
    let cell = cell.max(1);
    let (lines, samples) = (scene.lines, scene.samples);
    let rows = lines.div_ceil(cell);
    let cols = samples.div_ceil(cell);
    let cells = rows * cols;
    let mut grid = TileGrid {
        cell,
        lines,
        samples,
        rows,
        cols,
        error: vec![f32::NAN; cells],
        pixels: vec![0; cells],
    };
    let Some(charts) = scene.charts.as_ref() else {
        return Ok(grid);
    };
    // Per cell: SIC |t − p| sum, then (count, mismatches) per chart.
    let mut sic_abs = vec![0u64; cells];
    let mut count = vec![[0u32; 3]; cells];
    let mut wrong = vec![[0u32; 3]; cells];
    for line in 0..lines {
        let base = line * samples;
        let row = line / cell;
        for s in 0..samples {
            let i = base + s;
            if charts[0][i] == CHART_FILL
                && charts[1][i] == CHART_FILL
                && charts[2][i] == CHART_FILL
            {
                continue;
            }
            let k = row * cols + s / cell;
            let mut any = false;
            for c in 0..3 {
                let t = charts[c][i];
                if t == CHART_FILL {
                    continue;
                }
                any = true;
                let p = pred[c][i];
                count[k][c] += 1;
                wrong[k][c] += u32::from(t != p);
                if c == 0 {
                    sic_abs[k] += t.abs_diff(p.min(10)) as u64;
                }
            }
            grid.pixels[k] += u32::from(any);
        }
    }
    let weights = [
        Chart::SIC.score_weight(),
        Chart::SOD.score_weight(),
        Chart::FLOE.score_weight(),
    ];
    for k in 0..cells {
        let (mut sum, mut wsum) = (0.0f64, 0.0f64);
        for c in 0..3 {
            let n = count[k][c];
            if n == 0 {
                continue;
            }
            let e = if c == 0 {
                sic_abs[k] as f64 / (10.0 * n as f64)
            } else {
                wrong[k][c] as f64 / n as f64
            };
            sum += weights[c] * e;
            wsum += weights[c];
        }
        if wsum > 0.0 {
            grid.error[k] = (sum / wsum) as f32;
        }
    }
    Ok(grid)
}

/// The cell `(row, col)` with the highest error among cells with a labelled pixel and,
/// given a mask (`lines × samples`, e.g. from [`condition_mask`]), at least one masked
/// pixel; the first such cell in row-major order on ties. `None` if there is none or the
/// mask has the wrong size.
pub fn worst_tile(grid: &TileGrid, mask: Option<&[bool]>) -> Option<(usize, usize)> {
    let touched: Option<Vec<bool>> = match mask {
        None => None,
        Some(m) if m.len() != grid.lines * grid.samples => return None,
        Some(m) => {
            let mut t = vec![false; grid.rows * grid.cols];
            for (line, row_mask) in m.chunks_exact(grid.samples.max(1)).enumerate() {
                let r = line / grid.cell;
                for (s, on) in row_mask.iter().enumerate() {
                    if *on {
                        t[r * grid.cols + s / grid.cell] = true;
                    }
                }
            }
            Some(t)
        }
    };
    let mut best: Option<(usize, f32)> = None;
    for (k, e) in grid.error.iter().enumerate() {
        if e.is_nan() || touched.as_ref().is_some_and(|t| !t[k]) {
            continue;
        }
        if best.is_none_or(|(_, b)| *e > b) {
            best = Some((k, *e));
        }
    }
    best.map(|(k, _)| (k / grid.cols, k % grid.cols))
}

/// Scenes per group of service, region, month, year and mission: the dataset's composition
/// (the fork's `distribution_*.png`). Only groups that occur, in their natural order.
pub fn dataset_histograms(metas: &[SceneMeta]) -> Vec<(Dimension, Vec<(String, usize)>)> {
    [
        Dimension::Service,
        Dimension::Region,
        Dimension::Month,
        Dimension::Year,
        Dimension::Mission,
    ]
    .into_iter()
    .map(|d| {
        let mut counts: BTreeMap<GroupKey, usize> = BTreeMap::new();
        for m in metas {
            let g = d.scene_group(m).unwrap_or_default();
            *counts.entry(group_key(d, &g)).or_default() += 1;
        }
        (d, counts.into_iter().map(|((_, _, g), n)| (g, n)).collect())
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Partial results: one evaluation cut into shards, run on several machines, pooled afterwards.
// ---------------------------------------------------------------------------------------------

/// The `format` field of a partial result file.
pub const PARTIAL_FORMAT: &str = "icelens-partial";

/// The version of the partial format this icelens writes and reads. Raised whenever a field
/// changes meaning, so that parts from different releases are refused rather than pooled
/// wrongly.
pub const PARTIAL_VERSION: u32 = 1;

/// SIC, SOD and FLOE confusion matrices, each as [`Confusion::to_sparse`] cells.
pub type SparseConfusions = [Vec<[u64; 3]>; 3];

fn to_sparse3(c: &[Confusion; 3]) -> SparseConfusions {
    [c[0].to_sparse(), c[1].to_sparse(), c[2].to_sparse()]
}

fn from_sparse3(c: &SparseConfusions) -> Result<[Confusion; 3], String> {
    Ok([
        Confusion::from_sparse(&c[0])?,
        Confusion::from_sparse(&c[1])?,
        Confusion::from_sparse(&c[2])?,
    ])
}

/// A scene a part scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialScene {
    /// File name (no folder): the key scenes are sorted by when parts are merged.
    pub file: String,
    /// Short scene name, e.g. `20190412T103015_dmi`.
    pub scene: String,
}

/// A scene a part could not score, and why (the message `evaluate` printed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedScene {
    pub file: String,
    pub error: String,
}

/// One group of the breakdown: its scenes and pooled matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialGroup {
    pub dimension: Dimension,
    pub group: String,
    /// Scenes that contributed labelled pixels (the "scenes" column and the small flag).
    pub scenes: Vec<String>,
    pub confusions: SparseConfusions,
}

/// One model's counts in a part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialModel {
    /// The name tables show (the checkpoint's file name).
    pub name: String,
    /// A digest of the checkpoint's bytes ([`fingerprint`]): two files of the same name but
    /// different weights must not be pooled.
    pub fingerprint: String,
    /// Per scored scene, in [`Partial::scenes`] order: the scene's own matrices (its row of
    /// the per-scene table).
    pub scenes: Vec<SparseConfusions>,
    /// Every (dimension, group) of [`Partial::dimensions`] seen.
    pub groups: Vec<PartialGroup>,
}

/// What one shard of `icelens evaluate` leaves for `icelens merge`: confusion matrices (which
/// add up across scenes exactly as the challenge pools pixels, §e.2), per scene and per
/// condition, the scenes behind each group, the models by name and fingerprint, and the
/// scenes that failed. Scores are not stored: they are computed once, from the pooled counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Always [`PARTIAL_FORMAT`].
    pub format: String,
    /// [`PARTIAL_VERSION`] when written.
    pub version: u32,
    /// The shard this part holds, if the run was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// The dimensions counted in every model's `groups`.
    pub dimensions: Vec<Dimension>,
    pub scenes: Vec<PartialScene>,
    pub failed: Vec<FailedScene>,
    pub models: Vec<PartialModel>,
}

/// FNV-1a (64 bit) of a file's bytes with its length, as 16 hex digits after `fnv1a64:`.
/// Not a cryptographic hash: it tells apart checkpoints that differ by accident (a retrained
/// model under the old name), which is all merging needs, without a hashing crate.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}:{}", bytes.len())
}

/// Why partial results cannot be read or pooled. Every message names the part file(s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartialError {
    #[error("{file}: not an icelens partial result ({problem})")]
    NotPartial { file: String, problem: String },
    #[error("{file}: partial result version {found}, but this icelens reads version {current}; rerun the shards with this icelens", current = PARTIAL_VERSION)]
    Version { file: String, found: u64 },
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error("no partial results to merge")]
    Empty,
    #[error("{a} and {b} were made with different models ({a_models} against {b_models}): merge the parts of one evaluation only")]
    DifferentModels {
        a: String,
        b: String,
        a_models: String,
        b_models: String,
    },
    #[error("{a} and {b} both hold scene {scene}: the parts overlap (the same shard twice, or shards of different runs?)")]
    Overlap { a: String, b: String, scene: String },
    #[error(
        "{a} is shard {a_shard} but {b} is shard {b_shard}: merge the shards of one split only"
    )]
    Shards {
        a: String,
        b: String,
        a_shard: String,
        b_shard: String,
    },
    #[error("{a} and {b} are both shard {shard}")]
    DuplicateShard { a: String, b: String, shard: String },
    #[error("shard {missing} is missing (got {got}); every shard is needed for the result of the whole run")]
    MissingShard { missing: String, got: String },
    #[error("{file} counts the dimension(s) {have}, not {wanted}")]
    MissingDimension {
        file: String,
        have: String,
        wanted: String,
    },
}

impl Partial {
    /// An empty part for the given dimensions.
    pub fn new(shard: Option<crate::shard::Shard>, dimensions: &[Dimension]) -> Partial {
        Partial {
            format: PARTIAL_FORMAT.into(),
            version: PARTIAL_VERSION,
            shard,
            dimensions: dimensions.to_vec(),
            scenes: vec![],
            failed: vec![],
            models: vec![],
        }
    }

    /// Adds a model's results: its accumulator (tracking this part's dimensions) and the
    /// matrices of each scene, in the order of [`Partial::scenes`].
    pub fn push_model(
        &mut self,
        fingerprint: String,
        acc: &Accumulator,
        scenes: &[[Confusion; 3]],
    ) {
        self.models.push(PartialModel {
            name: acc.model.clone(),
            fingerprint,
            scenes: scenes.iter().map(to_sparse3).collect(),
            groups: acc
                .groups
                .iter()
                .map(|((d, _, g), a)| PartialGroup {
                    dimension: *d,
                    group: g.clone(),
                    scenes: a.scenes.iter().cloned().collect(),
                    confusions: to_sparse3(&a.confusion),
                })
                .collect(),
        });
    }

    /// JSON text of the part.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a partial result serialises")
    }

    /// Reads a part; `file` names it in errors. The format and version are checked before the
    /// rest, so that a foreign JSON file or a part of another version gets its own message.
    pub fn from_json(file: &str, bytes: &[u8]) -> Result<Partial, PartialError> {
        let not = |problem: String| PartialError::NotPartial {
            file: file.to_string(),
            problem,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| not(format!("not JSON: {e}")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(PARTIAL_FORMAT) => {}
            Some(other) => return Err(not(format!("its format is \"{other}\""))),
            None => return Err(not("no \"format\" field".into())),
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(PARTIAL_VERSION) => {}
            Some(found) => {
                return Err(PartialError::Version {
                    file: file.to_string(),
                    found,
                })
            }
            None => return Err(not("no \"version\" number".into())),
        }
        let invalid = |problem: String| PartialError::Invalid {
            file: file.to_string(),
            problem,
        };
        let part: Partial = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        for m in &part.models {
            if m.scenes.len() != part.scenes.len() {
                return Err(invalid(format!(
                    "model {} has matrices for {} scenes, the part lists {}",
                    m.name,
                    m.scenes.len(),
                    part.scenes.len()
                )));
            }
        }
        Ok(part)
    }

    fn models_text(&self) -> String {
        let names: Vec<String> = self
            .models
            .iter()
            .map(|m| format!("{} [{}]", m.name, m.fingerprint))
            .collect();
        names.join(", ")
    }
}

/// One model over every part.
#[derive(Debug, Clone)]
pub struct MergedModel {
    pub name: String,
    pub fingerprint: String,
    /// (short scene name, matrices) per scored scene, in [`Merged::scenes`] order.
    pub scenes: Vec<(String, [Confusion; 3])>,
    /// Every group of the parts' dimensions, pooled.
    pub accumulator: Accumulator,
}

impl MergedModel {
    /// The pooled matrices of every scene: the challenge's score of the whole run.
    pub fn pooled(&self) -> [Confusion; 3] {
        let mut total: [Confusion; 3] = Default::default();
        for (_, c) in &self.scenes {
            for (t, s) in total.iter_mut().zip(c) {
                t.merge(s);
            }
        }
        total
    }
}

/// The parts pooled: as if one run had evaluated every scene.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Dimensions every part counted.
    pub dimensions: Vec<Dimension>,
    /// Scored scenes sorted by file name (the order shards are cut from).
    pub scenes: Vec<PartialScene>,
    /// Scenes that failed in some part, sorted by file name.
    pub failed: Vec<FailedScene>,
    pub models: Vec<MergedModel>,
}

/// Pools parts (`(file name, part)`): refuses parts of different models (names or
/// fingerprints), parts that share a scene, shards of different splits and, when the parts
/// are shards, a missing shard. The result's counts are the sums of the parts', so every
/// score computed from them equals the one run's over all scenes, to the last digit.
pub fn merge_partials(parts: &[(String, Partial)]) -> Result<Merged, PartialError> {
    let Some((first_file, first)) = parts.first() else {
        return Err(PartialError::Empty);
    };
    let key = |p: &Partial| -> Vec<(String, String)> {
        p.models
            .iter()
            .map(|m| (m.name.clone(), m.fingerprint.clone()))
            .collect()
    };
    let mut dimensions = first.dimensions.clone();
    // Where each scene (scored or failed) was seen first.
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for (file, part) in parts {
        if key(part) != key(first) {
            return Err(PartialError::DifferentModels {
                a: first_file.clone(),
                b: file.clone(),
                a_models: first.models_text(),
                b_models: part.models_text(),
            });
        }
        match (first.shard, part.shard) {
            (Some(a), Some(b)) if a.count() == b.count() => {}
            (None, None) => {}
            (a, b) => {
                let show = |s: Option<crate::shard::Shard>| {
                    s.map_or("none (a whole run)".to_string(), |s| s.to_string())
                };
                return Err(PartialError::Shards {
                    a: first_file.clone(),
                    b: file.clone(),
                    a_shard: show(a),
                    b_shard: show(b),
                });
            }
        }
        dimensions.retain(|d| part.dimensions.contains(d));
        let names = part
            .scenes
            .iter()
            .map(|s| &s.scene)
            .chain(part.failed.iter().map(|f| &f.file));
        for name in names {
            if let Some(a) = owner.insert(name.clone(), file) {
                return Err(PartialError::Overlap {
                    a: a.to_string(),
                    b: file.clone(),
                    scene: name.clone(),
                });
            }
        }
    }
    if let Some(n) = first.shard.map(|s| s.count()) {
        let mut got: Vec<usize> = parts
            .iter()
            .filter_map(|(_, p)| p.shard.map(|s| s.index()))
            .collect();
        got.sort_unstable();
        let have = got
            .iter()
            .map(|k| format!("{k}/{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(pair) = got.windows(2).find(|w| w[0] == w[1]) {
            let files: Vec<&str> = parts
                .iter()
                .filter(|(_, p)| p.shard.map(|s| s.index()) == Some(pair[0]))
                .map(|(f, _)| f.as_str())
                .collect();
            return Err(PartialError::DuplicateShard {
                a: files[0].to_string(),
                b: files[1].to_string(),
                shard: format!("{}/{n}", pair[0]),
            });
        }
        if let Some(k) = (1..=n).find(|k| !got.contains(k)) {
            return Err(PartialError::MissingShard {
                missing: format!("{k}/{n}"),
                got: have,
            });
        }
    }

    // Scenes in file-name order, with where each sits in its part.
    let mut order: Vec<(PartialScene, usize, usize)> = Vec::new();
    let mut failed: Vec<FailedScene> = Vec::new();
    for (p, (_, part)) in parts.iter().enumerate() {
        for (i, s) in part.scenes.iter().enumerate() {
            order.push((s.clone(), p, i));
        }
        failed.extend(part.failed.iter().cloned());
    }
    order.sort_by(|a, b| (&a.0.file, &a.0.scene).cmp(&(&b.0.file, &b.0.scene)));
    failed.sort_by(|a, b| a.file.cmp(&b.file));

    let mut models = Vec::new();
    for (m, meta) in first.models.iter().enumerate() {
        let mut acc = Accumulator::new(meta.name.clone(), &dimensions);
        let mut scenes = Vec::new();
        for (s, p, i) in &order {
            let (file, part) = &parts[*p];
            let c = from_sparse3(&part.models[m].scenes[*i]).map_err(|problem| {
                PartialError::Invalid {
                    file: file.clone(),
                    problem: format!("scene {}: {problem}", s.scene),
                }
            })?;
            for (t, x) in acc.total.iter_mut().zip(&c) {
                t.merge(x);
            }
            acc.scenes.push(s.scene.clone());
            scenes.push((s.scene.clone(), c));
        }
        for (file, part) in parts {
            for g in &part.models[m].groups {
                if !dimensions.contains(&g.dimension) {
                    continue;
                }
                let c = from_sparse3(&g.confusions).map_err(|problem| PartialError::Invalid {
                    file: file.clone(),
                    problem: format!("group {} = {}: {problem}", g.dimension, g.group),
                })?;
                let entry = acc
                    .groups
                    .entry(group_key(g.dimension, &g.group))
                    .or_default();
                for (t, x) in entry.confusion.iter_mut().zip(&c) {
                    t.merge(x);
                }
                entry.scenes.extend(g.scenes.iter().cloned());
            }
        }
        models.push(MergedModel {
            name: meta.name.clone(),
            fingerprint: meta.fingerprint.clone(),
            scenes,
            accumulator: acc,
        });
    }
    Ok(Merged {
        dimensions,
        scenes: order.into_iter().map(|(s, _, _)| s).collect(),
        failed,
        models,
    })
}

impl Merged {
    /// Checks the parts counted every dimension asked for; `files` names them in the error.
    pub fn require(&self, wanted: &[Dimension], files: &str) -> Result<(), PartialError> {
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|d| !self.dimensions.contains(d))
            .map(|d| d.key())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let have: Vec<&str> = self.dimensions.iter().map(|d| d.key()).collect();
        Err(PartialError::MissingDimension {
            file: files.to_string(),
            have: if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            },
            wanted: missing.join(", "),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::global_mean_std;
    use crate::meta::Timestamp;

    #[test]
    fn constants_match_the_global_statistics() {
        assert_eq!(global_mean_std("distance_map"), Some(DISTANCE_MEAN_STD));
        assert_eq!(
            global_mean_std("sar_incidenceangle"),
            Some(INCIDENCE_MEAN_STD)
        );
    }

    #[test]
    fn bands_of_stored_values() {
        let z = |id: f64| ((id - DISTANCE_MEAN_STD.0) / DISTANCE_MEAN_STD.1) as f32;
        let bands: Vec<u8> = (0..=41).map(|id| land_band(z(id as f64))).collect();
        assert_eq!(bands[0], 0);
        assert!(bands[1..=3].iter().all(|b| *b == 1));
        assert!(bands[4..=11].iter().all(|b| *b == 2));
        assert!(bands[12..=27].iter().all(|b| *b == 3));
        assert!(bands[28..=41].iter().all(|b| *b == 4));
        assert_eq!(land_band(f32::NAN), 5);
        let a = |deg: f64| ((deg - INCIDENCE_MEAN_STD.0) / INCIDENCE_MEAN_STD.1) as f32;
        assert_eq!(incidence_band(1.0, a(25.0)), 0);
        assert_eq!(incidence_band(1.0, a(33.0)), 1);
        assert_eq!(incidence_band(1.0, a(45.0)), 2);
        assert_eq!(incidence_band(0.0, a(33.0)), 3);
    }

    #[test]
    fn season_and_month_groups() {
        let mut m = SceneMeta::default();
        assert_eq!(Dimension::Season.scene_group(&m).unwrap(), "unknown");
        for (month, season) in [
            (12, "DJF winter"),
            (1, "DJF winter"),
            (3, "MAM spring"),
            (8, "JJA summer"),
            (11, "SON autumn"),
        ] {
            m.acquired = Some(Timestamp {
                year: 2020,
                month,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            });
            assert_eq!(Dimension::Season.scene_group(&m).unwrap(), season);
        }
        assert_eq!(Dimension::Month.scene_group(&m).unwrap(), "11 Nov");
        assert_eq!(Dimension::Year.scene_group(&m).unwrap(), "2020");
        assert_eq!(Dimension::Land.scene_group(&m), None);
    }
}
