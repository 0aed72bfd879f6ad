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

mod accumulate;
mod compare;
mod partial;
mod rows;
mod tiles;

pub use accumulate::*;
pub use compare::*;
pub use partial::*;
pub use rows::*;
pub use tiles::*;

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
