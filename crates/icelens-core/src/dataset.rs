//! The dataset atlas: what the training and test sets hold, from their file names alone.
//!
//! The real dataset is 532 scenes of 100-200 MB; its composition is in the names (§g.1), so a
//! list of names (the fork's two JSON lists, a text file, a folder's listing) is enough to
//! compare the training and test distributions over service, region, mission, year, month,
//! season and hour, and, with the class pixel table of the training scenes, the class balance
//! of SIC, SOD and FLOE per group. Where the test set's share of a group differs most from the
//! training set's is marked, and the per-group weight test share / training share is the
//! reweighting that makes training draws follow the test distribution (the team's
//! reweighting sampler): drawing training scenes with these weights gives every group its
//! test share.
//!
//! The conditions come from [`SceneMeta::from_file_name`] and the group names from
//! [`Dimension::scene_group`], the same words as the breakdown of scores; only the hour is
//! the atlas's own (scores are not broken down by it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::breakdown::{Dimension, SEASON_GROUPS, UNKNOWN};
use crate::chart::{Chart, CHART_FILL};
use crate::meta::SceneMeta;

/// What the scenes are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facet {
    Service,
    Region,
    Mission,
    Year,
    Month,
    Season,
    /// Hour (UTC) the acquisition started, `"00"` … `"23"`.
    Hour,
}

impl Facet {
    pub const ALL: [Facet; 7] = [
        Facet::Service,
        Facet::Region,
        Facet::Mission,
        Facet::Year,
        Facet::Month,
        Facet::Season,
        Facet::Hour,
    ];

    /// The word used on the command line, in JSON and CSV (the breakdown's word where the
    /// breakdown has the dimension).
    pub fn key(self) -> &'static str {
        match self.dimension() {
            Some(d) => d.key(),
            None => "hour",
        }
    }

    /// Heading for tables.
    pub fn title(self) -> &'static str {
        match self.dimension() {
            Some(d) => d.title(),
            None => "Hour (UTC)",
        }
    }

    /// The breakdown's dimension of the same name, if there is one.
    pub fn dimension(self) -> Option<Dimension> {
        Some(match self {
            Facet::Service => Dimension::Service,
            Facet::Region => Dimension::Region,
            Facet::Mission => Dimension::Mission,
            Facet::Year => Dimension::Year,
            Facet::Month => Dimension::Month,
            Facet::Season => Dimension::Season,
            Facet::Hour => return None,
        })
    }

    /// The group a scene falls into.
    pub fn group(self, meta: &SceneMeta) -> String {
        match self.dimension() {
            Some(d) => d.scene_group(meta).unwrap_or_else(|| UNKNOWN.to_string()),
            None => meta
                .acquired
                .map(|t| format!("{:02}", t.hour))
                .unwrap_or_else(|| UNKNOWN.to_string()),
        }
    }

    /// Sort position of a group: seasons in their order, `"unknown"` last, the rest as text
    /// (months, years and hours sort right as text).
    fn order(self, group: &str) -> (u32, String) {
        let pos = match self {
            Facet::Season => SEASON_GROUPS
                .iter()
                .position(|g| *g == group)
                .map_or(u32::MAX, |i| i as u32),
            _ => u32::from(group == UNKNOWN),
        };
        (pos, group.to_string())
    }
}

impl FromStr for Facet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        Facet::ALL
            .into_iter()
            .find(|f| f.key().eq_ignore_ascii_case(word))
            .ok_or_else(|| {
                let keys: Vec<&str> = Facet::ALL.iter().map(|f| f.key()).collect();
                format!("unknown dimension \"{word}\"; valid: {}", keys.join(", "))
            })
    }
}

impl fmt::Display for Facet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A list or table that cannot be used, naming the file and, where there is one, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error("{file}: {problem}")]
    File { file: String, problem: String },
    #[error("{file}: line {line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: String,
    },
}

fn file_err(file: &str, problem: impl Into<String>) -> DatasetError {
    DatasetError::File {
        file: file.to_string(),
        problem: problem.into(),
    }
}

/// Scene names from a list file: a JSON array of strings (the fork's `dataset.json` and
/// `testset.json`) or text with one name per line (blank lines and lines starting with `#`
/// skipped). Folders in front of a name are kept here and dropped when it is decoded. A name
/// given twice is an error: it would count twice.
pub fn parse_names(file: &str, bytes: &[u8]) -> Result<Vec<String>, DatasetError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| file_err(file, format!("not UTF-8 text ({e})")))?;
    let names: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<String>>(text)
            .map_err(|e| file_err(file, format!("not a JSON list of file names ({e})")))?
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let names: Vec<String> = names.into_iter().map(|n| n.trim().to_string()).collect();
    if names.is_empty() {
        return Err(file_err(file, "holds no scene names"));
    }
    let mut seen = BTreeSet::new();
    for n in &names {
        if n.is_empty() {
            return Err(file_err(file, "holds an empty name"));
        }
        if !seen.insert(n.as_str()) {
            return Err(file_err(file, format!("names {n} twice")));
        }
    }
    Ok(names)
}

/// Scene names from a folder's listing (`folder` names it in errors): its `.nc` files,
/// sorted, the files themselves not read. The command line lists a folder with `read_dir`,
/// the page gets the names from the directory picker; both take them here.
pub fn names_from_listing(
    folder: &str,
    files: impl IntoIterator<Item = String>,
) -> Result<Vec<String>, DatasetError> {
    let mut out: Vec<String> = files
        .into_iter()
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or_default().to_string())
        .filter(|f| f.ends_with(".nc"))
        .collect();
    if out.is_empty() {
        return Err(file_err(folder, "holds no .nc files"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Pixels per class value (0…255) of each chart of each training scene, from the class
/// pixel table (`scene,chart,class,pixels`; scene is the ready-to-train name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassPixels {
    /// Ready-to-train scene name → SIC, SOD, FLOE counts by class value.
    pub scenes: BTreeMap<String, [Vec<u64>; 3]>,
}

/// The class pixel table's header.
pub const CLASS_PIXELS_HEADER: &str = "scene,chart,class,pixels";

impl ClassPixels {
    /// Reads the table; an error names the line and what is wrong with it.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<ClassPixels, DatasetError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| file_err(file, format!("not UTF-8 text ({e})")))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim() == CLASS_PIXELS_HEADER => {}
            _ => {
                return Err(file_err(
                    file,
                    format!("the first line must be \"{CLASS_PIXELS_HEADER}\""),
                ))
            }
        }
        let mut out = ClassPixels::default();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |problem: String| DatasetError::Line {
                file: file.to_string(),
                line: i + 1,
                problem,
            };
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [scene, chart, class, pixels] = f[..] else {
                return Err(bad(format!("expected 4 fields, found {}", f.len())));
            };
            let chart = Chart::from_name(chart)
                .ok_or_else(|| bad(format!("unknown chart \"{chart}\" (SIC, SOD or FLOE)")))?;
            let class: u8 = class
                .parse()
                .map_err(|_| bad(format!("class \"{class}\" is not 0…255")))?;
            let pixels: u64 = pixels
                .parse()
                .map_err(|_| bad(format!("pixels \"{pixels}\" is not a whole number")))?;
            if scene.is_empty() {
                return Err(bad("no scene name".into()));
            }
            let counts = out
                .scenes
                .entry(crate::meta::short_name(scene))
                .or_insert_with(|| [vec![0; 256], vec![0; 256], vec![0; 256]]);
            let cell = &mut counts[chart as usize][class as usize];
            if *cell != 0 {
                return Err(bad(format!("{scene} {chart} class {class} given twice")));
            }
            *cell = pixels;
        }
        if out.scenes.is_empty() {
            return Err(file_err(file, "holds no rows"));
        }
        Ok(out)
    }
}

/// One group of one facet, training against test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupShare {
    pub group: String,
    /// Scenes of the group.
    pub train: usize,
    pub test: usize,
    /// Fractions 0…1 of the set's scenes.
    pub train_share: f64,
    pub test_share: f64,
    /// test_share − train_share.
    pub difference: f64,
    /// test_share / train_share: the sampling weight of each training scene of the group
    /// that makes training draws follow the test distribution; `None` where the training set
    /// has no scene of the group (no weight reaches it).
    pub weight: Option<f64>,
    /// The group of this facet whose test share differs most from its training share.
    pub most_different: bool,
}

/// A facet's groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetTable {
    pub facet: Facet,
    pub groups: Vec<GroupShare>,
}

impl FacetTable {
    /// The group with [`GroupShare::most_different`].
    pub fn most_different(&self) -> Option<&GroupShare> {
        self.groups.iter().find(|g| g.most_different)
    }

    /// The reweighting: group → weight, groups the training set has.
    pub fn weights(&self) -> BTreeMap<String, f64> {
        self.groups
            .iter()
            .filter_map(|g| Some((g.group.clone(), g.weight?)))
            .collect()
    }
}

/// Class balance of one chart over some training scenes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartBalance {
    pub chart: Chart,
    /// Pixels with a class (not 255).
    pub labelled: u64,
    /// Pixels with 255 (no class).
    pub masked: u64,
    /// Labelled pixels per class, 0 … the chart's last class (values beyond are left out).
    pub pixels: Vec<u64>,
    /// `pixels` as fractions of `labelled` (0 where nothing is labelled).
    pub shares: Vec<f64>,
}

impl ChartBalance {
    fn of(chart: Chart, counts: &[u64]) -> ChartBalance {
        let pixels: Vec<u64> = counts[..chart.n_classes()].to_vec();
        let labelled: u64 = counts
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != CHART_FILL as usize)
            .map(|(_, n)| n)
            .sum();
        ChartBalance {
            chart,
            labelled,
            masked: counts[CHART_FILL as usize],
            shares: pixels
                .iter()
                .map(|n| {
                    if labelled == 0 {
                        0.0
                    } else {
                        *n as f64 / labelled as f64
                    }
                })
                .collect(),
            pixels,
        }
    }
}

/// Class balance of the training scenes of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupBalance {
    /// `None` for all training scenes together.
    pub facet: Option<Facet>,
    pub group: String,
    /// Training scenes of the group with pixel counts.
    pub scenes: usize,
    pub charts: Vec<ChartBalance>,
}

/// The atlas of a training and a test list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atlas {
    pub train_scenes: usize,
    pub test_scenes: usize,
    pub facets: Vec<FacetTable>,
    /// With a class pixel table: every training scene with counts, then per group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassBalance>,
}

/// The class balance part of the atlas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassBalance {
    /// All training scenes with counts together.
    pub overall: GroupBalance,
    pub groups: Vec<GroupBalance>,
    /// Training scenes without a row in the table.
    pub train_without_counts: Vec<String>,
    /// Scenes of the table not in the training list (left out).
    pub counted_not_listed: Vec<String>,
}

impl Atlas {
    /// The atlas of two name lists (original or ready-to-train names, mixed freely) and,
    /// optionally, the class pixel table of the training scenes.
    pub fn new(train: &[String], test: &[String], pixels: Option<&ClassPixels>) -> Atlas {
        let train: Vec<SceneMeta> = train.iter().map(|n| SceneMeta::from_file_name(n)).collect();
        let test: Vec<SceneMeta> = test.iter().map(|n| SceneMeta::from_file_name(n)).collect();
        let facets = Facet::ALL
            .iter()
            .map(|f| facet_table(*f, &train, &test))
            .collect();
        Atlas {
            train_scenes: train.len(),
            test_scenes: test.len(),
            facets,
            classes: pixels.map(|p| class_balance(&train, p)),
        }
    }

    /// The test set's share of every group of a scene-level dimension: what fine-tuning draws
    /// each group with to follow the test distribution (`finetune --balance D --weights-from`,
    /// the page's "follow the test set"). `atlas` names the atlas in errors.
    pub fn test_shares(
        &self,
        atlas: &str,
        dimension: Dimension,
    ) -> Result<BTreeMap<String, f64>, DatasetError> {
        let facet: Facet = dimension.key().parse().map_err(|_| {
            file_err(
                atlas,
                format!("an atlas has no {dimension} groups (it has service, region, mission, year, month and season)"),
            )
        })?;
        let table = self
            .facets
            .iter()
            .find(|t| t.facet == facet)
            .ok_or_else(|| file_err(atlas, format!("has no {facet} table")))?;
        Ok(table
            .groups
            .iter()
            .map(|g| (g.group.clone(), g.test_share))
            .collect())
    }

    pub fn facet(&self, facet: Facet) -> &FacetTable {
        self.facets
            .iter()
            .find(|t| t.facet == facet)
            .expect("every facet has a table")
    }

    /// CSV, one line per facet and group, then (with pixel counts) one per facet, group,
    /// chart and class:
    /// `facet,group,train,test,train_share,test_share,difference,weight,most_different,chart,class,pixels,share`.
    /// Group lines leave the last four fields empty, class lines the scene fields but `train`
    /// (the scenes counted). An undefined weight is empty.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "facet,group,train,test,train_share,test_share,difference,weight,most_different,chart,class,pixels,share\n",
        );
        let q = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        for t in &self.facets {
            for g in &t.groups {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},,,,\n",
                    t.facet,
                    q(&g.group),
                    g.train,
                    g.test,
                    g.train_share,
                    g.test_share,
                    g.difference,
                    g.weight.map(|w| w.to_string()).unwrap_or_default(),
                    g.most_different
                ));
            }
        }
        if let Some(c) = &self.classes {
            for b in &c.groups {
                for ch in &b.charts {
                    for (k, (n, s)) in ch.pixels.iter().zip(&ch.shares).enumerate() {
                        out.push_str(&format!(
                            "{},{},{},,,,,,,{},{k},{n},{s}\n",
                            b.facet.map_or("all", Facet::key),
                            q(&b.group),
                            b.scenes,
                            ch.chart.name()
                        ));
                    }
                }
            }
        }
        out
    }
}

fn facet_table(facet: Facet, train: &[SceneMeta], test: &[SceneMeta]) -> FacetTable {
    let mut counts: BTreeMap<(u32, String), (usize, usize)> = BTreeMap::new();
    for m in train {
        counts.entry(facet.order(&facet.group(m))).or_default().0 += 1;
    }
    for m in test {
        counts.entry(facet.order(&facet.group(m))).or_default().1 += 1;
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let mut groups: Vec<GroupShare> = counts
        .into_iter()
        .map(|((_, group), (a, b))| {
            let (ts, vs) = (share(a, train.len()), share(b, test.len()));
            GroupShare {
                group,
                train: a,
                test: b,
                train_share: ts,
                test_share: vs,
                difference: vs - ts,
                weight: (a > 0).then(|| vs / ts),
                most_different: false,
            }
        })
        .collect();
    // The first of the largest differences, in group order.
    let mut best: Option<(usize, f64)> = None;
    for (i, g) in groups.iter().enumerate() {
        if best.is_none_or(|(_, d)| g.difference.abs() > d) {
            best = Some((i, g.difference.abs()));
        }
    }
    if let Some((i, d)) = best {
        if d > 0.0 {
            groups[i].most_different = true;
        }
    }
    FacetTable { facet, groups }
}

fn balance(facet: Option<Facet>, group: String, scenes: &[&[Vec<u64>; 3]]) -> GroupBalance {
    let mut sum = [vec![0u64; 256], vec![0u64; 256], vec![0u64; 256]];
    for s in scenes {
        for (acc, counts) in sum.iter_mut().zip(s.iter()) {
            for (a, n) in acc.iter_mut().zip(counts) {
                *a += n;
            }
        }
    }
    GroupBalance {
        facet,
        group,
        scenes: scenes.len(),
        charts: Chart::ALL
            .iter()
            .map(|c| ChartBalance::of(*c, &sum[*c as usize]))
            .collect(),
    }
}

fn class_balance(train: &[SceneMeta], pixels: &ClassPixels) -> ClassBalance {
    let listed: BTreeSet<&str> = train.iter().map(|m| m.scene.as_str()).collect();
    let with: Vec<(&SceneMeta, &[Vec<u64>; 3])> = train
        .iter()
        .filter_map(|m| Some((m, pixels.scenes.get(&m.scene)?)))
        .collect();
    let mut groups = Vec::new();
    for facet in Facet::ALL {
        let mut by: BTreeMap<(u32, String), Vec<&[Vec<u64>; 3]>> = BTreeMap::new();
        for (m, c) in &with {
            by.entry(facet.order(&facet.group(m))).or_default().push(*c);
        }
        for ((_, group), scenes) in by {
            groups.push(balance(Some(facet), group, &scenes));
        }
    }
    let all: Vec<&[Vec<u64>; 3]> = with.iter().map(|(_, c)| *c).collect();
    ClassBalance {
        overall: balance(None, "all".into(), &all),
        groups,
        train_without_counts: train
            .iter()
            .filter(|m| !pixels.scenes.contains_key(&m.scene))
            .map(|m| m.scene.clone())
            .collect(),
        counted_not_listed: pixels
            .scenes
            .keys()
            .filter(|s| !listed.contains(s.as_str()))
            .cloned()
            .collect(),
    }
}

/// Reads an atlas written as JSON (`icelens dataset --json`); `file` names it in errors.
pub fn atlas_from_json(file: &str, bytes: &[u8]) -> Result<Atlas, DatasetError> {
    serde_json::from_slice(bytes).map_err(|e| {
        file_err(
            file,
            format!("not the JSON `icelens dataset --json` writes ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_in_both_forms_and_their_errors() {
        let json = br#"["a_prep.nc", "b_prep.nc"]"#;
        assert_eq!(
            parse_names("l.json", json).unwrap(),
            names(&["a_prep.nc", "b_prep.nc"])
        );
        let text = b"# scenes\n a_prep.nc \n\nb_prep.nc\n";
        assert_eq!(
            parse_names("l.txt", text).unwrap(),
            names(&["a_prep.nc", "b_prep.nc"])
        );
        for (bytes, want) in [
            (&b"[1, 2]"[..], "not a JSON list"),
            (b"\n# nothing\n", "no scene names"),
            (b"a\nb\na\n", "names a twice"),
            (b"\xff\xfe", "not UTF-8"),
        ] {
            let e = parse_names("l.txt", bytes).unwrap_err().to_string();
            assert!(e.starts_with("l.txt: ") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn folder_listings_keep_scene_files_only() {
        let files = [
            "b_prep.nc",
            "notes.txt",
            "sub/a_prep.nc",
            "a_prep.nc",
            "x.nc.part",
        ];
        assert_eq!(
            names_from_listing("dir", files.iter().map(|f| f.to_string())).unwrap(),
            names(&["a_prep.nc", "b_prep.nc"])
        );
        let e = names_from_listing("dir", ["readme.md".to_string()]).unwrap_err();
        assert_eq!(e.to_string(), "dir: holds no .nc files");
    }

    #[test]
    fn test_shares_follow_the_facet_and_refuse_pixel_dimensions() {
        let train = names(&["20190101T100000_dmi_prep.nc", "20190401T100000_cis_prep.nc"]);
        let test = names(&[
            "20200101T100000_dmi_prep.nc",
            "20200101T110000_dmi_prep.nc",
            "20200201T110000_cis_prep.nc",
            "20200301T110000_cis_prep.nc",
        ]);
        let a = Atlas::new(&train, &test, None);
        let s = a.test_shares("a.json", Dimension::Service).unwrap();
        assert_eq!(s.len(), 2);
        assert!((s["dmi"] - 0.5).abs() < 1e-12 && (s["cis"] - 0.5).abs() < 1e-12);
        let m = a.test_shares("a.json", Dimension::Month).unwrap();
        let jan = m.iter().find(|(g, _)| g.starts_with("01")).unwrap();
        assert!((jan.1 - 0.5).abs() < 1e-12, "{m:?}");
        let e = a.test_shares("a.json", Dimension::Land).unwrap_err();
        assert!(e.to_string().starts_with("a.json: an atlas has no"), "{e}");
    }

    #[test]
    fn class_table_errors_name_the_line() {
        let ok = b"scene,chart,class,pixels\nx_dmi,SIC,0,5\nx_dmi,SIC,255,2\n";
        let p = ClassPixels::parse("c.csv", ok).unwrap();
        assert_eq!(p.scenes["x_dmi"][0][0], 5);
        for (bytes, want) in [
            (&b"scene,pixels\n"[..], "first line"),
            (
                b"scene,chart,class,pixels\nx,SIC,0\n",
                "line 2: expected 4 fields",
            ),
            (
                b"scene,chart,class,pixels\nx,SIC,0,1\nx,ICE,0,1\n",
                "line 3: unknown chart",
            ),
            (
                b"scene,chart,class,pixels\nx,SIC,256,1\n",
                "line 2: class \"256\"",
            ),
            (b"scene,chart,class,pixels\nx,SIC,1,-4\n", "pixels \"-4\""),
            (
                b"scene,chart,class,pixels\nx,SIC,1,4\nx,SIC,1,4\n",
                "given twice",
            ),
        ] {
            let e = ClassPixels::parse("c.csv", bytes).unwrap_err().to_string();
            assert!(e.starts_with("c.csv: ") && e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn shares_weights_and_the_mark_on_a_small_case() {
        // Training: 3 dmi, 1 cis; test: 1 dmi, 1 cis, 1 scene of unknown service.
        let train = names(&[
            "20190101T100000_dmi_prep.nc",
            "20190201T100000_dmi_prep.nc",
            "20190301T100000_dmi_prep.nc",
            "20190401T100000_cis_prep.nc",
        ]);
        let test = names(&[
            "20200101T100000_dmi_prep.nc",
            "20200101T110000_cis_prep.nc",
            "odd name.nc",
        ]);
        let a = Atlas::new(&train, &test, None);
        let s = a.facet(Facet::Service);
        let g: Vec<(&str, usize, usize)> = s
            .groups
            .iter()
            .map(|g| (g.group.as_str(), g.train, g.test))
            .collect();
        assert_eq!(g, [("cis", 1, 1), ("dmi", 3, 1), ("unknown", 0, 1)]);
        // dmi: 1/3 against 3/4 is the largest difference (-5/12).
        assert_eq!(s.most_different().unwrap().group, "dmi");
        let w = s.weights();
        assert!((w["cis"] - (1.0 / 3.0) / 0.25).abs() < 1e-12);
        assert!((w["dmi"] - (1.0 / 3.0) / 0.75).abs() < 1e-12);
        assert!(!w.contains_key("unknown"));
        // Weighted training draws give each group its test share among what training has.
        let total: f64 = s
            .groups
            .iter()
            .filter_map(|g| Some(g.weight? * g.train as f64))
            .sum();
        assert!((w["cis"] * 1.0 / total - 0.5).abs() < 1e-12);
        assert_eq!(a.facet(Facet::Hour).groups[0].group, "10");
        let csv = a.to_csv();
        assert!(
            csv.contains("\nservice,dmi,3,1,0.75,0.3333333333333333,"),
            "{csv}"
        );
        assert!(
            csv.contains("\nservice,unknown,0,1,0,0.3333333333333333,0.3333333333333333,,false"),
            "{csv}"
        );
    }
}
