//! A scene taken apart into a small JSON header and its big arrays, and put together again:
//! how a scene decoded in a Web Worker reaches the page.
//!
//! The arrays travel as typed arrays whose buffers are transferred, not copied, between the
//! threads, and the page copies each straight into its own vector: no serialised copy of
//! the whole scene (about 500 MB for a real one) ever exists on either side. The header is
//! checked against the arrays on arrival, so a malformed message is an error, not a panic
//! later.

use serde::{Deserialize, Serialize};

use crate::meta::SceneMeta;
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

/// One big array of a scene.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    F32(Vec<f32>),
    U8(Vec<u8>),
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
        // A header of plain data always serialises.
        header: serde_json::to_string(&header).unwrap_or_default(),
        arrays,
    }
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
