//! Reading and validating a scene from the bytes of a netCDF file.
//!
//! `netcdf-reader` decodes both containers (netCDF-4/HDF5 with chunking, shuffle and deflate,
//! and netCDF-3 CDF-1/2/5) from memory, in pure Rust, so the same code runs in the browser.
//! This module adds what a decoder cannot know: which variables a scene must have, their
//! shapes, types and value ranges, and how much memory a file may make us allocate.

use netcdf_reader::{NcAttrValue, NcFile, NcFormat, NcOpenOptions, NcType, NcVariable};

use crate::channels::{self, INPUT_CHANNELS, SAR_CHANNELS};
use crate::chart::Chart;
use crate::error::FileError;
use crate::meta::SceneMeta;
use crate::scene::{Array, AttrValue, Container, Scene, TiePoints, VariableInfo};

/// Bounds on what a file may make us allocate, checked before any allocation.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Largest SAR grid accepted, in pixels. The largest training scene has 31.8 M pixels.
    pub max_pixels: usize,
    /// Largest 2 km grid accepted, in cells. Real scenes have about 50 000 (a 2 km cell is
    /// 25 x 25 SAR pixels); its 20 channels would otherwise let a small header ask for
    /// gigabytes.
    pub max_grid_cells: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_pixels: 60_000_000,
            max_grid_cells: 1_000_000,
        }
    }
}

/// Largest geolocation tie-point grid accepted (real scenes have 21 x 21).
const MAX_TIE_POINTS: usize = 1_000_000;

/// Deflate cannot compress better than about 1032:1, so a netCDF-4 file cannot honestly hold
/// more decoded bytes than this many times its own length.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads a scene from the whole content of a file; `file` is its name, used in messages and
/// as a fallback for the metadata.
pub fn read_scene(file: &str, bytes: Vec<u8>, limits: &ReadLimits) -> Result<Scene, FileError> {
    let f = SceneFile::open(file, bytes, limits)?;
    let big = f.read_all_big()?;
    let small = f.read_small()?;
    f.assemble(big, small)
}

/// The SAR-grid arrays of a scene, the big ones, by index: the four SAR-grid channels
/// ([`SAR_CHANNELS`]), then SIC, SOD and FLOE when the scene has charts. Decoding them is
/// nearly all of the cost of reading a scene, and each can be decoded on its own.
pub const BIG_ARRAYS: usize = 7;

/// A scene file opened and checked: its grids, variables, shapes and types, and that the
/// file can hold what it claims, before anything big is decoded. The big arrays can then be
/// decoded separately (on several threads natively; in several Web Workers in the page, each
/// with the file open) and put together with the rest by [`SceneFile::assemble`].
pub struct SceneFile {
    pub(crate) file: String,
    pub(crate) nc: NcFile,
    pub(crate) container: Container,
    pub(crate) lines: usize,
    pub(crate) samples: usize,
    pub(crate) grid_lines: usize,
    pub(crate) grid_samples: usize,
    pub(crate) tie_samples: usize,
    pub(crate) tie_lines: usize,
    pub(crate) pixels: usize,
    pub(crate) cells: usize,
    pub(crate) tie_points: usize,
    pub(crate) charts: bool,
}

/// What a scene has beside its big arrays: the 2 km channels, the geolocation and the
/// metadata. Cheap to read.
#[derive(Debug, Clone)]
pub struct SmallParts {
    pub coarse: Vec<Vec<f32>>,
    pub tie_points: TiePoints,
    pub meta: SceneMeta,
    pub variables: Vec<VariableInfo>,
}

impl SceneFile {
    /// Opens `bytes` and checks everything but the values of the variables.
    pub fn open(file: &str, bytes: Vec<u8>, limits: &ReadLimits) -> Result<Self, FileError> {
        let len = bytes.len() as u64;
        sniff(file, &bytes)?;
        if let Some(claimed) = hdf5_end_of_file(&bytes) {
            if claimed > len {
                return Err(FileError::file(
                    file,
                    format!("is truncated: its HDF5 superblock says the file has {claimed} bytes, but it has {len}"),
                ));
            }
        }
        let options = NcOpenOptions {
            // Bounds every single read: no variable of a valid scene is larger than 4 bytes a
            // pixel.
            max_read_bytes: limits.max_pixels.saturating_mul(4).max(1 << 20),
            // Each variable is read once, whole: a chunk cache would only hold memory.
            chunk_cache_bytes: 1 << 20,
            ..NcOpenOptions::default()
        };
        let nc = NcFile::from_owner(bytes, options).map_err(|e| {
            FileError::file(
                file,
                format!("cannot be opened as netCDF ({e}); the file may be truncated or damaged"),
            )
        })?;
        let container = match nc.format() {
            NcFormat::Nc4 | NcFormat::Nc4Classic => Container::Netcdf4,
            _ => Container::Netcdf3,
        };
        let r = Reader {
            file,
            nc: &nc,
            container,
        };

        let lines = r.dim(channels::DIM_LINES)?;
        let samples = r.dim(channels::DIM_SAMPLES)?;
        let grid_lines = r.dim(channels::DIM_GRID_LINES)?;
        let grid_samples = r.dim(channels::DIM_GRID_SAMPLES)?;
        let tie_samples = r.dim(channels::DIM_TIE_SAMPLES)?;
        let tie_lines = r.dim(channels::DIM_TIE_LINES)?;
        let (pixels, cells) =
            r.check_sizes(lines, samples, grid_lines, grid_samples, len, limits)?;
        let tie_points = tie_samples
            .checked_mul(tie_lines)
            .filter(|n| *n > 0 && *n <= MAX_TIE_POINTS)
            .ok_or_else(|| {
                FileError::file(
                    file,
                    format!("has an implausible tie-point grid of {tie_samples} x {tie_lines}"),
                )
            })?;

        let full = [channels::DIM_LINES, channels::DIM_SAMPLES];
        let coarse_dims = [channels::DIM_GRID_LINES, channels::DIM_GRID_SAMPLES];
        let tie_dims = [channels::DIM_TIE_SAMPLES, channels::DIM_TIE_LINES];

        // Check every variable's presence, shape and type before decoding anything big, so
        // that a wrong file fails fast and names its first problem.
        for name in SAR_CHANNELS {
            r.expect(name, &full, &[NcType::Float])?;
        }
        for name in channels::coarse_channels() {
            r.expect(name, &coarse_dims, &[NcType::Float])?;
        }
        for name in [channels::LAT, channels::LON] {
            r.expect(name, &tie_dims, &[NcType::Double, NcType::Float])?;
        }
        let present: Vec<Chart> = Chart::ALL
            .into_iter()
            .filter(|c| nc.variable(c.name()).is_ok())
            .collect();
        if !present.is_empty() && present.len() < 3 {
            let missing = Chart::ALL
                .into_iter()
                .find(|c| !present.contains(c))
                .map(Chart::name)
                .unwrap_or("?");
            return Err(FileError::variable(
                file,
                missing,
                "is missing, but the other charts are present (a scene has all three or none)",
            ));
        }
        for chart in &present {
            r.expect(chart.name(), &full, &[NcType::UByte, NcType::Byte])?;
        }
        Ok(Self {
            file: file.to_string(),
            container,
            lines,
            samples,
            grid_lines,
            grid_samples,
            tie_samples,
            tie_lines,
            pixels,
            cells,
            tie_points,
            charts: !present.is_empty(),
            nc,
        })
    }

    /// The file's name, as given to [`SceneFile::open`].
    pub fn name(&self) -> &str {
        &self.file
    }

    /// The SAR grid's size, lines x samples.
    pub fn size(&self) -> (usize, usize) {
        (self.lines, self.samples)
    }

    /// How many big arrays the scene has: 7 with charts, 4 without.
    pub fn big_arrays(&self) -> usize {
        if self.charts {
            BIG_ARRAYS
        } else {
            SAR_CHANNELS.len()
        }
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            file: &self.file,
            nc: &self.nc,
            container: self.container,
        }
    }

    /// Decodes big array `index` (see [`BIG_ARRAYS`]).
    pub fn read_big(&self, index: usize) -> Result<Array, FileError> {
        let r = self.reader();
        match index {
            i if i < SAR_CHANNELS.len() => r.read_f32(SAR_CHANNELS[i], self.pixels).map(Array::F32),
            i if i < self.big_arrays() => r
                .read_chart(Chart::ALL[i - SAR_CHANNELS.len()], self.pixels)
                .map(Array::U8),
            i => Err(FileError::file(
                &self.file,
                format!("has no big array {i} (it has {})", self.big_arrays()),
            )),
        }
    }

    /// Every big array: on a thread each natively (they are independent, and inflating
    /// deflate streams is the cost), one after another in wasm, where the page shares them
    /// out over workers instead.
    fn read_all_big(&self) -> Result<Vec<Array>, FileError> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..self.big_arrays())
                    .map(|i| s.spawn(move || self.read_big(i)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(FileError::file(
                                &self.file,
                                "could not be decoded (internal error)",
                            ))
                        })
                    })
                    .collect()
            })
        }
        #[cfg(target_arch = "wasm32")]
        {
            (0..self.big_arrays()).map(|i| self.read_big(i)).collect()
        }
    }

    /// Reads what the scene has beside its big arrays.
    pub fn read_small(&self) -> Result<SmallParts, FileError> {
        let r = self.reader();
        let coarse = channels::coarse_channels()
            .iter()
            .map(|name| r.read_f32(name, self.cells))
            .collect::<Result<Vec<_>, _>>()?;
        let tie_points = TiePoints {
            n_samples: self.tie_samples,
            n_lines: self.tie_lines,
            lat: r.read_f64(channels::LAT, self.tie_points)?,
            lon: r.read_f64(channels::LON, self.tie_points)?,
        };
        let global = |name: &str| {
            self.nc
                .global_attribute(name)
                .ok()
                .and_then(|a| a.value.as_string())
                .map(|s| s.trim_end_matches('\0').to_string())
        };
        let meta = SceneMeta::derive(
            &self.file,
            global("scene_id").as_deref(),
            global("original_id").as_deref(),
            global("ice_service").as_deref(),
        );
        let variables = self
            .nc
            .variables()
            .map_err(|e| {
                FileError::file(&self.file, format!("has an unreadable variable list ({e})"))
            })?
            .iter()
            .map(variable_info)
            .collect();
        debug_assert_eq!(INPUT_CHANNELS.len(), 4 + coarse.len());
        Ok(SmallParts {
            coarse,
            tie_points,
            meta,
            variables,
        })
    }

    /// The scene, from its big arrays in order (however they were decoded) and the rest.
    pub fn assemble(&self, big: Vec<Array>, small: SmallParts) -> Result<Scene, FileError> {
        let lost = |what: &str| FileError::file(&self.file, format!("lost {what} in decoding"));
        if big.len() != self.big_arrays() {
            return Err(lost("a big array"));
        }
        let mut sar = Vec::with_capacity(SAR_CHANNELS.len());
        let mut charts = Vec::with_capacity(Chart::ALL.len());
        for a in big {
            match a {
                Array::F32(v) if v.len() == self.pixels && charts.is_empty() => sar.push(v),
                Array::U8(v) if v.len() == self.pixels => charts.push(v),
                _ => return Err(lost("the shape of a big array")),
            }
        }
        let sar: [Vec<f32>; 4] = sar.try_into().map_err(|_| lost("a SAR channel"))?;
        let charts: Option<[Vec<u8>; 3]> = if self.charts {
            Some(charts.try_into().map_err(|_| lost("a chart"))?)
        } else {
            None
        };
        Ok(Scene {
            file: self.file.clone(),
            container: self.container,
            lines: self.lines,
            samples: self.samples,
            grid_lines: self.grid_lines,
            grid_samples: self.grid_samples,
            sar,
            coarse: small.coarse,
            charts,
            tie_points: small.tie_points,
            meta: small.meta,
            variables: small.variables,
        })
    }
}

/// Whether a file's first bytes (64 are plenty) leave it to be read as a scene: they are
/// neither model weights ([`crate::checkpoint::looks_like_weights`]) nor JSON (a story,
/// evaluation results). The page sends such files to its decoding worker and its memory
/// budget. Deciding on the exclusion rather than on netCDF's magic bytes sends a netCDF-4
/// file with a user block (its HDF5 signature 512 bytes or more in) there too, and a file of
/// another kind gets the reader's message saying what it is.
pub fn may_be_scene(head: &[u8]) -> bool {
    let json = head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    !json && !crate::checkpoint::looks_like_weights(head)
}

/// Recognises files that are clearly not netCDF, to say what they are instead.
fn sniff(file: &str, bytes: &[u8]) -> Result<(), FileError> {
    const HDF5: &[u8] = b"\x89HDF\r\n\x1a\n";
    if bytes.is_empty() {
        return Err(FileError::file(
            file,
            "is empty (0 bytes), not a netCDF scene",
        ));
    }
    if bytes.starts_with(b"CDF") || bytes.starts_with(HDF5) {
        return Ok(());
    }
    // netCDF-4 allows a user block of 512 * 2^k bytes before the HDF5 superblock.
    let mut offset = 512usize;
    while offset + HDF5.len() <= bytes.len() {
        if &bytes[offset..offset + HDF5.len()] == HDF5 {
            return Ok(());
        }
        offset = offset.saturating_mul(2);
    }
    let what = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "is a PNG image".to_string()
    } else if bytes.starts_with(b"PK\x03\x04") {
        "is a zip archive (a model checkpoint?)".to_string()
    } else if bytes.starts_with(b"\x80") {
        "is a Python pickle".to_string()
    } else {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("starts with bytes {}", head.join(" "))
    };
    Err(FileError::file(
        file,
        format!("{what}, not a netCDF file (no CDF or HDF5 signature)"),
    ))
}

/// The end-of-file address an HDF5 superblock records (relative to its base address, which
/// is added), or `None` if there is no readable superblock. A file shorter than this was cut
/// off, which is the commonest damage (an interrupted download) and deserves a plain message.
fn hdf5_end_of_file(bytes: &[u8]) -> Option<u64> {
    const HDF5: &[u8] = b"\x89HDF\r\n\x1a\n";
    let mut sb = 0usize;
    while bytes.get(sb..sb + 8)? != HDF5 {
        sb = if sb == 0 { 512 } else { sb.checked_mul(2)? };
    }
    let byte = |i: usize| bytes.get(sb + i).copied();
    let read = |at: usize, size: usize| -> Option<u64> {
        let b = bytes.get(sb + at..sb + at + size)?;
        let mut v = 0u64;
        for (k, x) in b.iter().enumerate() {
            v |= (*x as u64) << (8 * k);
        }
        // All ones is HDF5's "undefined address".
        (v != u64::MAX >> (64 - 8 * size as u32)).then_some(v)
    };
    let version = byte(8)?;
    let (offsets, base_at) = match version {
        0 => (byte(13)? as usize, 24),
        1 => (byte(13)? as usize, 28),
        2 | 3 => (byte(9)? as usize, 12),
        _ => return None,
    };
    if !(offsets == 4 || offsets == 8) {
        return None;
    }
    let base = read(base_at, offsets)?;
    let eof = read(base_at + 2 * offsets, offsets)?;
    base.checked_add(eof)
}

struct Reader<'a> {
    file: &'a str,
    nc: &'a NcFile,
    container: Container,
}

impl Reader<'_> {
    fn dim(&self, name: &str) -> Result<usize, FileError> {
        let d = self.nc.dimension(name).map_err(|_| {
            FileError::file(
                self.file,
                format!("has no dimension `{name}`; is it an AI4Arctic ready-to-train scene?"),
            )
        })?;
        usize::try_from(d.size).map_err(|_| {
            FileError::file(
                self.file,
                format!("dimension `{name}` is too large ({})", d.size),
            )
        })
    }

    /// Checks the grids against the limits and against what the file can hold; returns the
    /// SAR pixels and 2 km cells, their products computed without overflow on any target.
    fn check_sizes(
        &self,
        lines: usize,
        samples: usize,
        grid_lines: usize,
        grid_samples: usize,
        file_len: u64,
        limits: &ReadLimits,
    ) -> Result<(usize, usize), FileError> {
        let err = |p: String| Err(FileError::file(self.file, p));
        if lines == 0 || samples == 0 {
            return err(format!("has an empty SAR grid ({lines} x {samples})"));
        }
        let pixels = (lines as u64).saturating_mul(samples as u64);
        if pixels > limits.max_pixels as u64 {
            return err(format!(
                "claims a SAR grid of {lines} x {samples} pixels, more than the {} pixels icelens accepts",
                limits.max_pixels
            ));
        }
        if grid_lines == 0 || grid_samples == 0 || grid_lines > lines || grid_samples > samples {
            return err(format!(
                "has a 2 km grid of {grid_lines} x {grid_samples} that does not fit its SAR grid of {lines} x {samples}"
            ));
        }
        let cells = (grid_lines as u64).saturating_mul(grid_samples as u64);
        if cells > limits.max_grid_cells as u64 {
            return err(format!(
                "claims a 2 km grid of {grid_lines} x {grid_samples} cells, more than the {} icelens accepts",
                limits.max_grid_cells
            ));
        }
        // The SAR-grid float channels alone need 16 bytes a pixel when decoded, the 2 km
        // channels 4 bytes a cell each.
        let coarse = channels::coarse_channels().len() as u64;
        let needed = pixels
            .saturating_mul(16)
            .saturating_add(cells.saturating_mul(4 * coarse));
        let possible = match self.container {
            Container::Netcdf3 => file_len,
            Container::Netcdf4 => file_len.saturating_mul(MAX_DEFLATE_RATIO),
        };
        if needed > possible {
            return err(format!(
                "claims a SAR grid of {lines} x {samples} pixels ({} MB of data), which a {file_len}-byte file cannot hold; it is truncated or damaged",
                needed / 1_000_000
            ));
        }
        // Both are below limits that are `usize`s, so they fit one.
        Ok((pixels as usize, cells as usize))
    }

    fn var(&self, name: &str) -> Result<&NcVariable, FileError> {
        self.nc
            .variable(name)
            .map_err(|_| FileError::variable(self.file, name, "is missing"))
    }

    fn expect(&self, name: &str, dims: &[&str], types: &[NcType]) -> Result<(), FileError> {
        let v = self.var(name)?;
        let found: Vec<&str> = v.dimensions().iter().map(|d| d.name.as_str()).collect();
        if found != dims {
            return Err(FileError::variable(
                self.file,
                name,
                format!(
                    "has dimensions ({}) but should have ({})",
                    found.join(", "),
                    dims.join(", ")
                ),
            ));
        }
        if !types.contains(v.dtype()) {
            let want: Vec<String> = types.iter().map(type_name).collect();
            return Err(FileError::variable(
                self.file,
                name,
                format!(
                    "has type {} but should be {}",
                    type_name(v.dtype()),
                    want.join(" or ")
                ),
            ));
        }
        Ok(())
    }

    fn decode_err(&self, name: &str, e: netcdf_reader::Error) -> FileError {
        FileError::variable(
            self.file,
            name,
            format!("cannot be decoded ({e}); the file may be truncated or damaged"),
        )
    }

    fn read_f32(&self, name: &str, n: usize) -> Result<Vec<f32>, FileError> {
        let mut buf = vec![0f32; n];
        self.nc
            .read_variable_into::<f32>(name, &mut buf)
            .map_err(|e| self.decode_err(name, e))?;
        Ok(buf)
    }

    fn read_f64(&self, name: &str, n: usize) -> Result<Vec<f64>, FileError> {
        let v = self.var(name)?;
        if *v.dtype() == NcType::Float {
            return Ok(self.read_f32(name, n)?.into_iter().map(f64::from).collect());
        }
        let mut buf = vec![0f64; n];
        self.nc
            .read_variable_into::<f64>(name, &mut buf)
            .map_err(|e| self.decode_err(name, e))?;
        Ok(buf)
    }

    /// Charts are `NC_UBYTE` in netCDF-4; netCDF-3 has no unsigned byte, so there they are
    /// `NC_BYTE` flagged `_Unsigned = "true"`. Both hold the same bits.
    fn read_chart(&self, chart: Chart, n: usize) -> Result<Vec<u8>, FileError> {
        let name = chart.name();
        let v = self.var(name)?;
        let mut buf = vec![0u8; n];
        if *v.dtype() == NcType::Byte {
            let mut signed = vec![0i8; n];
            self.nc
                .read_variable_into::<i8>(name, &mut signed)
                .map_err(|e| self.decode_err(name, e))?;
            for (d, s) in buf.iter_mut().zip(signed) {
                *d = s as u8;
            }
        } else {
            self.nc
                .read_variable_into::<u8>(name, &mut buf)
                .map_err(|e| self.decode_err(name, e))?;
        }
        let mut bad = [0usize; 256];
        for v in &buf {
            bad[*v as usize] += usize::from(!chart.is_valid_value(*v));
        }
        if let Some((value, count)) = bad.iter().enumerate().find(|(_, c)| **c > 0) {
            return Err(FileError::variable(
                self.file,
                name,
                format!(
                    "has {count} pixels of value {value}, outside its classes 0 to {} and not the fill value 255",
                    chart.n_classes() - 1
                ),
            ));
        }
        Ok(buf)
    }
}

fn type_name(t: &NcType) -> String {
    match t {
        NcType::Byte => "int8",
        NcType::Char => "char",
        NcType::Short => "int16",
        NcType::Int => "int32",
        NcType::Float => "float32",
        NcType::Double => "float64",
        NcType::UByte => "uint8",
        NcType::UShort => "uint16",
        NcType::UInt => "uint32",
        NcType::Int64 => "int64",
        NcType::UInt64 => "uint64",
        NcType::String => "string",
        _ => "a user-defined type",
    }
    .to_string()
}

fn variable_info(v: &NcVariable) -> VariableInfo {
    VariableInfo {
        name: v.name().to_string(),
        dims: v
            .dimensions()
            .iter()
            .map(|d| (d.name.clone(), d.size as usize))
            .collect(),
        dtype: type_name(v.dtype()),
        attributes: v
            .attributes()
            .iter()
            .map(|a| {
                let value = match &a.value {
                    NcAttrValue::Chars(s) => AttrValue::Text(s.trim_end_matches('\0').to_string()),
                    NcAttrValue::Strings(s) => AttrValue::Text(s.join(", ")),
                    other => AttrValue::Numbers(other.as_f64_vec().unwrap_or_default()),
                };
                (a.name.clone(), value)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::may_be_scene;

    #[test]
    fn scenes_go_to_the_reader_whatever_their_first_bytes_and_models_or_json_do_not() {
        assert!(may_be_scene(b"CDF\x01\0\0\0\0"));
        assert!(may_be_scene(b"\x89HDF\r\n\x1a\n\0\0"));
        // A netCDF-4 file with a user block: its signature is 512 bytes in.
        assert!(may_be_scene(&[0u8; 64]));
        // Something else entirely is read as a scene too, so the reader names what it is.
        assert!(may_be_scene(b"\x89PNG\r\n\x1a\n"));
        assert!(!may_be_scene(b"PK\x03\x04rest of a torch zip"));
        assert!(!may_be_scene(b"NRUB\x01\0\0\0"));
        assert!(!may_be_scene(b"\x40\0\0\0\0\0\0\0{\"__metadata__\""));
        assert!(!may_be_scene(b"  \n{\"version\":1,\"steps\":[]}"));
    }
}
