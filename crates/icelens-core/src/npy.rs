//! NumPy `.npy` files and `.npz` archives: the exchange format with the Python side.
//!
//! The challenge's users live in NumPy; `icelens input` writes the model input as `.npy` so
//! it can be fed to PyTorch directly, and the reference outputs are `.npy`/`.npz`. Only what is
//! needed is supported: little-endian f32, f64, u8 and i64, C order.

use std::io::{Cursor, Read};

/// Element types icelens reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    U8,
    I64,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
            Dtype::U8 => "|u1",
            Dtype::I64 => "<i8",
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 => 1,
        }
    }

    fn parse(descr: &str) -> Option<Dtype> {
        Some(match descr {
            "<f4" => Dtype::F32,
            "<f8" => Dtype::F64,
            "|u1" | "<u1" => Dtype::U8,
            "<i8" => Dtype::I64,
            _ => return None,
        })
    }
}

/// A decoded array: shape and little-endian raw data.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl NpyArray {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_f32(&self) -> Result<Vec<f32>, NpyError> {
        match self.dtype {
            Dtype::F32 => Ok(self
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            other => Err(NpyError::Dtype {
                found: other,
                expected: "float32",
            }),
        }
    }

    pub fn to_u8(&self) -> Result<Vec<u8>, NpyError> {
        match self.dtype {
            Dtype::U8 => Ok(self.data.clone()),
            other => Err(NpyError::Dtype {
                found: other,
                expected: "uint8",
            }),
        }
    }
}

/// Encodes an f32 array as `.npy` bytes.
pub fn write_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let mut out = header(Dtype::F32, shape);
    out.reserve(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Encodes a u8 array as `.npy` bytes.
pub fn write_u8(shape: &[usize], values: &[u8]) -> Vec<u8> {
    let mut out = header(Dtype::U8, shape);
    out.extend_from_slice(values);
    out
}

fn header(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape
    );
    // Version 1.0: magic (6) + version (2) + u16 length, header padded to a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A `.npy` or `.npz` that cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    #[error("not a .npy file (no \\x93NUMPY signature)")]
    NotNpy,
    #[error("unsupported .npy version {0}")]
    Version(u8),
    /// The header dictionary: what is wrong with it.
    #[error("the .npy header {0}")]
    Header(String),
    #[error("the .npy data has {found} bytes, its shape needs {needed}")]
    Length { found: usize, needed: usize },
    #[error("array is {found:?}, expected {expected}")]
    Dtype {
        found: Dtype,
        expected: &'static str,
    },
    #[error("{0}")]
    Npz(String),
}

/// The command line reports errors as text; `?` turns this into it there.
impl From<NpyError> for String {
    fn from(e: NpyError) -> String {
        e.to_string()
    }
}

/// Decodes `.npy` bytes, checking that the data is as long as the shape says.
pub fn read(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(NpyError::NotNpy);
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(NpyError::Version(v)),
    };
    let end = start
        .checked_add(hlen)
        .filter(|e| *e <= bytes.len())
        .ok_or(NpyError::Header("is longer than the file".into()))?;
    let dict = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| NpyError::Header("is not text".into()))?;
    let field = |key: &str| -> Result<&str, NpyError> {
        let at = dict
            .find(&format!("'{key}'"))
            .ok_or_else(|| NpyError::Header(format!("has no '{key}'")))?;
        Ok(dict[at + key.len() + 2..].trim_start_matches([':', ' ']))
    };
    let descr = field("descr")?;
    let descr = descr
        .trim_start_matches('\'')
        .split('\'')
        .next()
        .unwrap_or("");
    let dtype = Dtype::parse(descr)
        .ok_or_else(|| NpyError::Header(format!("has the unsupported dtype {descr}")))?;
    if field("fortran_order")?.starts_with("True") {
        return Err(NpyError::Header(
            "asks for Fortran order, which is not supported".into(),
        ));
    }
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|t| t.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| {
            NpyError::Header("has a shape that is not a tuple such as (1, 24, 256, 256)".into())
        })?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| NpyError::Header(format!("has the bad shape entry {s}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or(NpyError::Header("has a shape that overflows".into()))?;
    let data = &bytes[end..];
    if data.len() != n {
        return Err(NpyError::Length {
            found: data.len(),
            needed: n,
        });
    }
    Ok(NpyArray {
        dtype,
        shape,
        data: data.to_vec(),
    })
}

/// Largest `.npz` member icelens inflates (a whole-scene reference array is under 100 MB).
pub const MAX_NPZ_MEMBER: u64 = 1 << 30;

/// Reads one member (`name`, without `.npy`) of an `.npz` archive.
pub fn read_npz_member(npz: &[u8], name: &str) -> Result<NpyArray, NpyError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(npz))
        .map_err(|e| NpyError::Npz(format!("not an .npz: {e}")))?;
    let mut file = zip
        .by_name(&format!("{name}.npy"))
        .map_err(|_| NpyError::Npz(format!("the .npz has no member {name}")))?;
    // The declared size is a claim: reserve no more than the archive holds, and inflate at
    // most MAX_NPZ_MEMBER bytes whatever it says; `read` then checks the data against the shape.
    let mut bytes = Vec::with_capacity(file.size().min(npz.len() as u64) as usize);
    (&mut file)
        .take(MAX_NPZ_MEMBER + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| NpyError::Npz(format!("member {name} cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_NPZ_MEMBER {
        return Err(NpyError::Npz(format!(
            "member {name} is larger than {} MiB",
            MAX_NPZ_MEMBER >> 20
        )));
    }
    read(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0];
        let bytes = write_f32(&[1, 2, 3], &v);
        assert_eq!(
            bytes[..10].len() + u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
            128
        );
        let a = read(&bytes).unwrap();
        assert_eq!(a.shape, vec![1, 2, 3]);
        assert_eq!(a.to_f32().unwrap(), v);
        let b = read(&write_u8(&[4], &[1, 2, 3, 255])).unwrap();
        assert_eq!(b.shape, vec![4]);
        assert_eq!(b.to_u8().unwrap(), vec![1, 2, 3, 255]);
    }

    #[test]
    fn rejects_short_data() {
        let mut bytes = write_f32(&[3], &[1.0, 2.0, 3.0]);
        bytes.truncate(bytes.len() - 1);
        assert_eq!(
            read(&bytes).unwrap_err(),
            NpyError::Length {
                found: 11,
                needed: 12
            }
        );
        assert!(read(b"hello").is_err());
    }
}
