//! A decoded scene: the arrays icelens needs, and no more.
//!
//! A real scene is about 5000 x 5200 pixels. Keeping only the four SAR-grid channels (f32),
//! the three charts (u8) and the small 2 km grids costs 19 bytes a pixel (~500 MB); the
//! 24-channel model input of a whole real scene would cost 2.5 GB, so it is never built: see
//! [`Scene::input_window`].

use serde::{Deserialize, Serialize};

use crate::channels::{HH_MEAN_STD, HV_MEAN_STD};
use crate::chart::{Chart, CHART_FILL};
use crate::meta::SceneMeta;

/// The container a scene was stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// netCDF-4 on HDF5 (the challenge's own files).
    Netcdf4,
    /// netCDF-3: CDF-1, CDF-2 or CDF-5.
    Netcdf3,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Netcdf4 => "netcdf4",
            Container::Netcdf3 => "netcdf3",
        }
    }
}

/// A numeric or text attribute value, as kept for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Text(String),
    Numbers(#[serde(deserialize_with = "numbers_or_nan")] Vec<f64>),
}

/// JSON has no NaN (serde writes it as `null`, e.g. a `_FillValue` of NaN); read it back.
fn numbers_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = Deserialize::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// Name, shape, type and attributes of one variable of the file, as found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableInfo {
    pub name: String,
    pub dims: Vec<(String, usize)>,
    pub dtype: String,
    pub attributes: Vec<(String, AttrValue)>,
}

/// Geolocation tie points, a coarse grid evenly spread over the scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiePoints {
    /// Tie points along the samples axis (the first axis in the files).
    pub n_samples: usize,
    /// Tie points along the lines axis.
    pub n_lines: usize,
    /// Latitude in degrees, index `s * n_lines + l`.
    pub lat: Vec<f64>,
    /// Longitude in degrees, same layout.
    pub lon: Vec<f64>,
}

impl TiePoints {
    /// Bilinear interpolation at a fractional tie-point position.
    fn at(&self, values: &[f64], s: f64, l: f64) -> f64 {
        let s = s.clamp(0.0, (self.n_samples - 1) as f64);
        let l = l.clamp(0.0, (self.n_lines - 1) as f64);
        let (s0, l0) = (s.floor() as usize, l.floor() as usize);
        let (s1, l1) = (
            (s0 + 1).min(self.n_samples - 1),
            (l0 + 1).min(self.n_lines - 1),
        );
        let (fs, fl) = (s - s0 as f64, l - l0 as f64);
        let v = |s: usize, l: usize| values[s * self.n_lines + l];
        let a = v(s0, l0) * (1.0 - fl) + v(s0, l1) * fl;
        let b = v(s1, l0) * (1.0 - fl) + v(s1, l1) * fl;
        a * (1.0 - fs) + b * fs
    }
}

/// One AI4Arctic ready-to-train scene.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The file name the scene was read from.
    pub file: String,
    pub container: Container,
    /// SAR grid rows (80 m).
    pub lines: usize,
    /// SAR grid columns.
    pub samples: usize,
    /// 2 km grid rows (data, never computed from `lines`).
    pub grid_lines: usize,
    pub grid_samples: usize,
    /// HH, HV, incidence angle, distance map: standard scaled, row-major `lines x samples`.
    pub sar: [Vec<f32>; 4],
    /// The 20 AMSR2/ERA5 channels on the 2 km grid, in input order.
    pub coarse: Vec<Vec<f32>>,
    /// SIC, SOD, FLOE class maps; `None` for test-set scenes.
    pub charts: Option<[Vec<u8>; 3]>,
    pub tie_points: TiePoints,
    pub meta: SceneMeta,
    /// Every variable of the file, in file order.
    pub variables: Vec<VariableInfo>,
}

impl Scene {
    pub fn pixels(&self) -> usize {
        self.lines * self.samples
    }

    pub fn has_charts(&self) -> bool {
        self.charts.is_some()
    }

    pub fn chart(&self, chart: Chart) -> Option<&[u8]> {
        self.charts.as_ref().map(|c| c[chart as usize].as_slice())
    }

    /// Whether the SAR has data at a pixel: the loaders' test-mode mask is HH == 0.
    pub fn is_valid(&self, index: usize) -> bool {
        self.sar[0][index] != 0.0
    }

    /// Share of pixels with SAR data.
    pub fn valid_fraction(&self) -> f64 {
        if self.pixels() == 0 {
            return 0.0;
        }
        let valid = self.sar[0].iter().filter(|v| **v != 0.0).count();
        valid as f64 / self.pixels() as f64
    }

    /// HH and HV in dB at a pixel (undoing the standard scaling), `None` where there is no data.
    pub fn sar_db(&self, line: usize, sample: usize) -> Option<(f64, f64)> {
        let i = line.checked_mul(self.samples)?.checked_add(sample)?;
        if line >= self.lines || sample >= self.samples || !self.is_valid(i) {
            return None;
        }
        let db = |z: f32, (m, s): (f64, f64)| z as f64 * s + m;
        Some((
            db(self.sar[0][i], HH_MEAN_STD),
            db(self.sar[1][i], HV_MEAN_STD),
        ))
    }

    /// Latitude and longitude of a pixel, interpolated between the tie points, which are
    /// spread evenly from the first to the last line and sample.
    pub fn lat_lon(&self, line: f64, sample: f64) -> (f64, f64) {
        let t = &self.tie_points;
        let frac = |x: f64, n: usize| {
            if n <= 1 {
                0.0
            } else {
                x / (n - 1) as f64
            }
        };
        let s = frac(sample, self.samples) * (t.n_samples - 1) as f64;
        let l = frac(line, self.lines) * (t.n_lines - 1) as f64;
        (t.at(&t.lat, s, l), t.at(&t.lon, s, l))
    }

    /// Pixels per class of a chart (index 255 counts the fill value).
    pub fn class_histogram(&self, chart: Chart) -> Option<[u64; 256]> {
        let values = self.chart(chart)?;
        let mut hist = [0u64; 256];
        for v in values {
            hist[*v as usize] += 1;
        }
        Some(hist)
    }

    /// Pixels of a chart that carry a class.
    pub fn labelled_pixels(&self, chart: Chart) -> usize {
        self.chart(chart)
            .map(|c| c.iter().filter(|v| **v != CHART_FILL).count())
            .unwrap_or(0)
    }
}

/// One big array of a scene as it is decoded, before it takes its place in a [`Scene`]: a
/// float32 channel or a byte chart.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    F32(Vec<f32>),
    U8(Vec<u8>),
}
