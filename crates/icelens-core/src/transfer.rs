//! A scene taken apart into a small JSON header and its big arrays, and put together again:
//! how a scene decoded in a Web Worker reaches the page.
//!
//! The arrays travel as typed arrays whose buffers are transferred, not copied, between the
//! threads, and the page copies each straight into its own vector: no serialised copy of
//! the whole scene (about 500 MB for a real one) ever exists on either side. The header is
//! checked against the arrays on arrival, so a malformed message is an error, not a panic
//! later.

use serde::{Deserialize, Serialize};

use crate::chart::Chart;
use crate::meta::SceneMeta;
use crate::read::{SceneFile, SmallParts, BIG_ARRAYS};
pub use crate::scene::Array;
use crate::scene::{Container, Scene, TiePoints, VariableInfo};

/// Everything of a scene but its big arrays.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    file: String,
    container: Container,
    lines: usize,
    samples: usize,
    grid_lines: usize,
    grid_samples: usize,
    coarse: usize,
    charts: bool,
    tie_samples: usize,
    tie_lines: usize,
    /// Latitudes and longitudes as their bits: JSON's decimal floats do not round-trip
    /// exactly, and the pixel inspector's positions should not move in transit.
    tie_lat: Vec<u64>,
    tie_lon: Vec<u64>,
    meta: SceneMeta,
    variables: Vec<VariableInfo>,
}

/// A scene as a header and its arrays, in order: the four SAR-grid channels, the 2 km
/// channels, then the three charts when the scene has them.
#[derive(Debug, Clone)]
pub struct Parts {
    pub header: String,
    pub arrays: Vec<Array>,
}

impl Parts {
    /// Bytes the arrays take (what the receiving side must hold).
    pub fn array_bytes(&self) -> usize {
        self.arrays
            .iter()
            .map(|a| match a {
                Array::F32(v) => v.len() * 4,
                Array::U8(v) => v.len(),
            })
            .sum()
    }
}

/// Takes a scene apart (moving its arrays, not copying them).
pub fn split(scene: Scene) -> Parts {
    let header = Header {
        file: scene.file,
        container: scene.container,
        lines: scene.lines,
        samples: scene.samples,
        grid_lines: scene.grid_lines,
        grid_samples: scene.grid_samples,
        coarse: scene.coarse.len(),
        charts: scene.charts.is_some(),
        tie_samples: scene.tie_points.n_samples,
        tie_lines: scene.tie_points.n_lines,
        tie_lat: scene.tie_points.lat.iter().map(|v| v.to_bits()).collect(),
        tie_lon: scene.tie_points.lon.iter().map(|v| v.to_bits()).collect(),
        meta: scene.meta,
        variables: scene.variables,
    };
    let mut arrays: Vec<Array> = scene.sar.into_iter().map(Array::F32).collect();
    arrays.extend(scene.coarse.into_iter().map(Array::F32));
    if let Some(charts) = scene.charts {
        arrays.extend(charts.into_iter().map(Array::U8));
    }
    Parts {
        header: header.encode(),
        arrays,
    }
}

/// The header of a scene whose big arrays are decoded elsewhere, and its 2 km channels (the
/// arrays of [`Parts`] between the SAR channels and the charts): what the worker that reads
/// a scene's small parts sends, beside the big arrays it and other workers decode.
pub fn split_small(file: &SceneFile, small: SmallParts) -> (String, Vec<Array>) {
    let header = Header {
        file: file.file.clone(),
        container: file.container,
        lines: file.lines,
        samples: file.samples,
        grid_lines: file.grid_lines,
        grid_samples: file.grid_samples,
        coarse: small.coarse.len(),
        charts: file.charts,
        tie_samples: small.tie_points.n_samples,
        tie_lines: small.tie_points.n_lines,
        tie_lat: small.tie_points.lat.iter().map(|v| v.to_bits()).collect(),
        tie_lon: small.tie_points.lon.iter().map(|v| v.to_bits()).collect(),
        meta: small.meta,
        variables: small.variables,
    };
    let coarse = small.coarse.into_iter().map(Array::F32).collect();
    (header.encode(), coarse)
}

impl Header {
    fn encode(&self) -> String {
        // A header of plain data always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where the arrays of a scene decoded in pieces go in [`Parts::arrays`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// Every array of the scene, in order: float32 or not, and its length.
    pub arrays: Vec<(bool, usize)>,
    /// The position of each 2 km channel.
    pub coarse: std::ops::Range<usize>,
    /// The position of each big array, in [`crate::read::BIG_ARRAYS`] order (4 without
    /// charts, 7 with).
    pub big: Vec<usize>,
}

/// The positions of a scene's arrays, from its header.
pub fn slots(header: &str) -> Result<Slots, TransferError> {
    let arrays = expected_arrays(header)?;
    let h: Header =
        serde_json::from_str(header).map_err(|e| TransferError::Header(e.to_string()))?;
    let sar = crate::channels::SAR_CHANNELS.len();
    let coarse = sar..sar + h.coarse;
    let mut big: Vec<usize> = (0..sar).collect();
    if h.charts {
        big.extend(coarse.end..coarse.end + Chart::ALL.len());
    }
    Ok(Slots {
        arrays,
        coarse,
        big,
    })
}

/// What one worker sends of a scene decoded in pieces: the 2 km channels first when it
/// read the small parts, then the big arrays `big` (indices in
/// [`crate::read::BIG_ARRAYS`] order), in that order.
#[derive(Debug, Clone)]
pub struct Share<T> {
    pub coarse: bool,
    pub big: Vec<usize>,
    pub arrays: Vec<T>,
}

/// Every array of the workers' shares in its place in [`Parts::arrays`]: each exactly once,
/// none the scene does not have. `T` is whatever carries an array (the page's typed arrays,
/// natively [`Array`]); lengths are checked when the arrays are read.
pub fn place<T>(slots: &Slots, shares: Vec<Share<T>>) -> Result<Vec<T>, TransferError> {
    let mut placed: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(slots.arrays.len())
        .collect();
    for share in shares {
        let coarse = if share.coarse {
            slots.coarse.clone()
        } else {
            0..0
        };
        let mut targets = Vec::with_capacity(coarse.len() + share.big.len());
        targets.extend(coarse);
        for index in &share.big {
            targets.push(
                *slots
                    .big
                    .get(*index)
                    .ok_or(TransferError::Unknown { index: *index })?,
            );
        }
        if targets.len() != share.arrays.len() {
            return Err(TransferError::Listed {
                got: share.arrays.len(),
                want: targets.len(),
            });
        }
        for (at, array) in targets.into_iter().zip(share.arrays) {
            let slot = placed
                .get_mut(at)
                .ok_or(TransferError::Missing { index: at })?;
            if slot.replace(array).is_some() {
                return Err(TransferError::Twice { index: at });
            }
        }
    }
    placed
        .into_iter()
        .enumerate()
        .map(|(index, a)| a.ok_or(TransferError::Missing { index }))
        .collect()
}

/// How many workers decode a file of `file_bytes` together: one per thread (`threads`), at
/// most one per SAR channel (the charts are a fifth of the work), and no more than a quarter
/// of `memory` holds copies of the file (each worker holds the whole file and its share of
/// the arrays). At least one.
pub fn decode_workers(threads: usize, file_bytes: u64, memory: u64) -> usize {
    let by_memory = memory / file_bytes.max(1).saturating_mul(4);
    threads
        .min(crate::channels::SAR_CHANNELS.len())
        .min(usize::try_from(by_memory).unwrap_or(usize::MAX))
        .max(1)
}

/// How the big arrays are shared out over `workers` workers decoding one file. The first
/// worker decodes HH, then HV, first: all any SAR picture needs
/// ([`crate::render::SarView::arrays`]), so that it can draw the picture while the others
/// are still decoding; the rest are balanced by their decoded
/// bytes (a SAR channel is 4 bytes a pixel, a chart 1), largest first, each to the least
/// loaded worker. Indices past a scene's big arrays (charts of a scene without them) are
/// skipped by the worker that gets them. The first worker also reads the small parts, which
/// cost little.
pub fn share_out(workers: usize) -> Vec<Vec<usize>> {
    let n = workers.clamp(1, BIG_ARRAYS);
    let weight = |i: usize| {
        if i < crate::channels::SAR_CHANNELS.len() {
            4
        } else {
            1
        }
    };
    let mut plan = vec![Vec::new(); n];
    let mut load = vec![0usize; n];
    let picture = [0, 1];
    plan[0] = picture.to_vec();
    load[0] = picture.iter().map(|i| weight(*i)).sum();
    // Already largest first: the other SAR channels, then the charts.
    for i in picture.len()..BIG_ARRAYS {
        // Ties go to the last worker, so the first (which also reads the small parts and
        // draws the picture) is loaded least.
        let w = (0..n).rev().min_by_key(|w| load[*w]).unwrap_or(0);
        plan[w].push(i);
        load[w] += weight(i);
    }
    plan
}

/// A scene message that does not hold together: what the receiving side refuses instead of
/// building a scene from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("scene header is malformed: {0}")]
    Header(String),
    #[error("scene size overflows")]
    Overflow,
    #[error("scene {file} arrived with {got} arrays, expected {want}")]
    Count {
        file: String,
        got: usize,
        want: usize,
    },
    #[error("scene {file}: array {index} does not have the {len} values its header announces")]
    Array {
        file: String,
        index: usize,
        len: usize,
    },
    #[error("scene {file}: tie points do not fill their grid")]
    TiePoints { file: String },
    #[error("a worker sent big array {index}, which the scene does not have")]
    Unknown { index: usize },
    #[error("two workers sent array {index}")]
    Twice { index: usize },
    #[error("a worker sent {got} arrays for the {want} it listed")]
    Listed { got: usize, want: usize },
    #[error("array {index} never arrived")]
    Missing { index: usize },
}

/// The page reports errors as text; `?` turns this into it there.
impl From<TransferError> for String {
    fn from(e: TransferError) -> String {
        e.to_string()
    }
}

/// The number and kinds of arrays a header announces, and the length of each: what the
/// receiving side checks before copying anything.
pub fn expected_arrays(header: &str) -> Result<Vec<(bool, usize)>, TransferError> {
    let h: Header =
        serde_json::from_str(header).map_err(|e| TransferError::Header(e.to_string()))?;
    let pixels = h
        .lines
        .checked_mul(h.samples)
        .ok_or(TransferError::Overflow)?;
    let grid = h
        .grid_lines
        .checked_mul(h.grid_samples)
        .ok_or(TransferError::Overflow)?;
    let mut out = vec![(true, pixels); 4];
    out.extend(std::iter::repeat_n((true, grid), h.coarse));
    if h.charts {
        out.extend(std::iter::repeat_n((false, pixels), 3));
    }
    Ok(out)
}

/// Puts a scene together again; every array must have the kind and length its header says.
pub fn join(parts: Parts) -> Result<Scene, TransferError> {
    let want = expected_arrays(&parts.header)?;
    let h: Header =
        serde_json::from_str(&parts.header).map_err(|e| TransferError::Header(e.to_string()))?;
    if parts.arrays.len() != want.len() {
        return Err(TransferError::Count {
            file: h.file,
            got: parts.arrays.len(),
            want: want.len(),
        });
    }
    let mut floats = Vec::new();
    let mut bytes = Vec::new();
    for (i, (a, (is_f32, len))) in parts.arrays.into_iter().zip(want).enumerate() {
        match (a, is_f32) {
            (Array::F32(v), true) if v.len() == len => floats.push(v),
            (Array::U8(v), false) if v.len() == len => bytes.push(v),
            _ => {
                return Err(TransferError::Array {
                    file: h.file,
                    index: i,
                    len,
                })
            }
        }
    }
    let coarse = floats.split_off(4);
    // The counts were checked against the header above: four SAR channels, three charts.
    let missing = |index| TransferError::Array {
        file: h.file.clone(),
        index,
        len: 0,
    };
    let sar: [Vec<f32>; 4] = floats.try_into().map_err(|_| missing(0))?;
    let charts = if h.charts {
        let c: [Vec<u8>; 3] = bytes.try_into().map_err(|_| missing(4 + h.coarse))?;
        Some(c)
    } else {
        None
    };
    let n = h.tie_samples.saturating_mul(h.tie_lines);
    if n == 0 || h.tie_lat.len() != n || h.tie_lon.len() != n {
        return Err(TransferError::TiePoints { file: h.file });
    }
    let tie_points = TiePoints {
        n_samples: h.tie_samples,
        n_lines: h.tie_lines,
        lat: h.tie_lat.iter().map(|b| f64::from_bits(*b)).collect(),
        lon: h.tie_lon.iter().map(|b| f64::from_bits(*b)).collect(),
    };
    Ok(Scene {
        file: h.file,
        container: h.container,
        lines: h.lines,
        samples: h.samples,
        grid_lines: h.grid_lines,
        grid_samples: h.grid_samples,
        sar,
        coarse,
        charts,
        tie_points,
        meta: h.meta,
        variables: h.variables,
    })
}
