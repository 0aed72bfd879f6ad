//! The challenge's upload package (spec §a.6): one uint8 variable `<scene>_<chart>` per scene
//! and chart, on the scene's own grid, each with its own two dimensions.
//!
//! Written as netCDF-3 (CDF-2) with `netcdf3`, the maintained pure-Rust writer: bytes are
//! `NC_BYTE` flagged `_Unsigned = "true"`, which xarray and netCDF4-python read as uint8.
//! The challenge's notebook writes netCDF-4 with zlib; the platform reads either through
//! xarray. CDF-2 is uncompressed: about 3 bytes a pixel, ~80 MB a real scene.

use netcdf3::DataSet;

use crate::chart::Chart;
use crate::nc3::{write_cdf2, Data};

/// One scene's predicted class maps.
pub struct UploadScene<'a> {
    /// Short scene name, e.g. `20190412T103015_dmi`.
    pub scene: &'a str,
    pub lines: usize,
    pub samples: usize,
    /// SIC, SOD, FLOE class indices.
    pub charts: [&'a [u8]; 3],
}

/// Encodes the upload package.
pub fn write_upload(file: &str, scenes: &[UploadScene<'_>]) -> Result<Vec<u8>, String> {
    let mut ds = DataSet::new();
    let e = |e: netcdf3::InvalidDataSet| format!("{file}: {e:?}");
    let mut bits: Vec<(String, Vec<i8>)> = Vec::new();
    for s in scenes {
        for (k, chart) in Chart::ALL.iter().enumerate() {
            let var = format!("{}_{}", s.scene, chart.name());
            if s.charts[k].len() != s.lines * s.samples {
                return Err(format!("{file}: {var} has the wrong number of pixels"));
            }
            let (d0, d1) = (format!("{var}_dim0"), format!("{var}_dim1"));
            ds.add_fixed_dim(&d0, s.lines).map_err(e)?;
            ds.add_fixed_dim(&d1, s.samples).map_err(e)?;
            ds.add_var_i8(&var, &[&d0, &d1]).map_err(e)?;
            ds.add_var_attr_string(&var, "_Unsigned", "true")
                .map_err(e)?;
            bits.push((var, s.charts[k].iter().map(|v| *v as i8).collect()));
        }
    }
    let data: Vec<(&str, Data<'_>)> = bits
        .iter()
        .map(|(n, b)| (n.as_str(), Data::I8(b)))
        .collect();
    write_cdf2(&ds, file, &data)
}
