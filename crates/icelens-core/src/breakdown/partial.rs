//! Partial results: one evaluation cut into shards, run on several machines, pooled
//! afterwards (`evaluate --partial`, `merge`).

use super::*;
use crate::metrics::CellError;

/// The `format` field of a partial result file.
pub const PARTIAL_FORMAT: &str = "icelens-partial";

/// The version of the partial format this icelens writes and reads. Raised whenever a field
/// changes meaning, so that parts from different releases are refused rather than pooled
/// wrongly.
pub const PARTIAL_VERSION: u32 = 1;

/// SIC, SOD and FLOE confusion matrices, each as [`Confusion::to_sparse`] cells.
pub type SparseConfusions = [Vec<[u64; 3]>; 3];

pub(super) fn to_sparse3(c: &[Confusion; 3]) -> SparseConfusions {
    [c[0].to_sparse(), c[1].to_sparse(), c[2].to_sparse()]
}

pub(super) fn from_sparse3(c: &SparseConfusions) -> Result<[Confusion; 3], CellError> {
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

/// Whether bytes look like a partial result (`evaluate --partial`, `merge --out`) rather than
/// another JSON file (a story, a name list, an atlas): a JSON object naming
/// [`PARTIAL_FORMAT`] near its start, where [`Partial::to_json`] writes it.
pub fn looks_like_partial(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if start.map(|i| bytes[i]) != Some(b'{') {
        return false;
    }
    let head = &bytes[..bytes.len().min(512)];
    let needle = format!("\"{PARTIAL_FORMAT}\"");
    head.windows(needle.len()).any(|w| w == needle.as_bytes())
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

impl Merged {
    /// The pooled parts as one part of a whole run (no shard): `merge --out` writes it, and
    /// merging it alone gives the same tables and scores as merging the parts.
    pub fn to_partial(&self) -> Partial {
        let mut p = Partial::new(None, &self.dimensions);
        p.scenes = self.scenes.clone();
        p.failed = self.failed.clone();
        for m in &self.models {
            let scenes: Vec<[Confusion; 3]> = m.scenes.iter().map(|(_, c)| c.clone()).collect();
            p.push_model(m.fingerprint.clone(), &m.accumulator, &scenes);
        }
        p
    }
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
