//! Model weights from the files users have: PyTorch checkpoints (`torch.save` zip archives)
//! and safetensors, read from bytes so the browser can use them as they are.
//!
//! burn's own PyTorch reader needs a file path, which a browser does not have; this module
//! reads the zip with the `zip` crate and the pickle with a restricted unpickler
//! ([`pickle`]) that builds nothing but containers and tensors.

pub mod pickle;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use crate::error::FileError;
use pickle::{StorageType, TensorRef, Value};

/// A float tensor, contiguous, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Where weights came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    PyTorch,
    Safetensors,
}

/// The named float tensors of a model (integer buffers such as `num_batches_tracked` are
/// listed, not kept: inference and export do not need their values).
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    pub tensors: BTreeMap<String, Tensor>,
    pub integer_buffers: Vec<String>,
    /// `epoch` of a training checkpoint, if it has one.
    pub epoch: Option<i64>,
    pub format: WeightsFormat,
}

/// Largest checkpoint member icelens decompresses, and largest tensor it builds.
const MAX_MEMBER_BYTES: u64 = 1 << 30;
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Reads the weights of a checkpoint, recognising the format by content.
pub fn load_state_dict(file: &str, bytes: &[u8]) -> Result<StateDict, FileError> {
    let err = |p: String| FileError::file(file, p);
    if bytes.starts_with(b"PK\x03\x04") {
        load_torch_zip(bytes).map_err(err)
    } else if bytes.starts_with(b"\x80") && bytes.len() > 2 && bytes[1] <= 5 {
        Err(err("is a PyTorch file in the legacy (pre-1.6) format; re-save it with a current torch.save".into()))
    } else if looks_like_safetensors(bytes) {
        load_safetensors(bytes).map_err(err)
    } else {
        Err(err(
            "is not a model checkpoint (neither a PyTorch .pt zip nor safetensors)".into(),
        ))
    }
}

fn looks_like_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    n > 1 && n < bytes.len() as u64 && bytes[8] == b'{'
}

fn load_torch_zip(bytes: &[u8]) -> Result<StateDict, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("is a damaged zip archive ({e})"))?;
    let pkl = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or("is a zip archive without data.pkl, so not a torch.save checkpoint")?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let program = read_member(&mut zip, &pkl, MAX_PICKLE_BYTES)?;
    let root = pickle::unpickle(&program)?;
    let (dict, epoch) = match root.get("model_state_dict").or(root.get("state_dict")) {
        Some(d) => (d, root.get("epoch").and_then(as_int)),
        None => (&root, None),
    };
    let Value::Dict(items) = dict else {
        return Err("holds no state_dict (a dict of tensors)".into());
    };
    let mut tensors = BTreeMap::new();
    let mut integer_buffers = Vec::new();
    for (k, v) in items {
        let (Some(name), Value::Tensor(t)) = (k.as_str(), v) else {
            continue;
        };
        match t.dtype {
            StorageType::F32 | StorageType::F16 | StorageType::BF16 | StorageType::F64 => {
                let member = format!("{prefix}data/{}", t.storage);
                let storage = read_member(&mut zip, &member, MAX_MEMBER_BYTES)
                    .map_err(|e| format!("tensor `{name}`: {e}"))?;
                let tensor =
                    materialise(t, &storage).map_err(|e| format!("tensor `{name}`: {e}"))?;
                tensors.insert(name.to_string(), tensor);
            }
            _ => integer_buffers.push(name.to_string()),
        }
    }
    if tensors.is_empty() {
        return Err("holds no float tensors".into());
    }
    Ok(StateDict {
        tensors,
        integer_buffers,
        epoch,
        format: WeightsFormat::PyTorch,
    })
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn read_member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let member = zip
        .by_name(name)
        .map_err(|_| format!("member {name} is missing from the archive"))?;
    if member.size() > limit {
        return Err(format!("member {name} is larger than {limit} bytes"));
    }
    let mut out = Vec::with_capacity(member.size() as usize);
    // `take` bounds the bytes actually inflated, whatever the header claims.
    member
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("member {name} cannot be read ({e})"))?;
    if out.len() as u64 > limit {
        return Err(format!("member {name} is larger than {limit} bytes"));
    }
    Ok(out)
}

/// Copies a strided view out of its storage, converting to f32, with every index checked.
fn materialise(t: &TensorRef, storage: &[u8]) -> Result<Tensor, String> {
    let size = t.dtype.size();
    if (t.storage_len as u128) * (size as u128) > storage.len() as u128 {
        return Err(format!(
            "its storage should hold {} values but has {} bytes",
            t.storage_len,
            storage.len()
        ));
    }
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|n| (*n as u64) * 4 <= MAX_MEMBER_BYTES)
        .ok_or("its shape is too large")?;
    if numel > 0 {
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (d, s)| {
                a.checked_add((d - 1).checked_mul(*s)?)
            })
            .ok_or("its strides overflow")?;
        if last >= t.storage_len {
            return Err("its view reaches past the end of its storage".into());
        }
    }
    let read = |i: usize| -> f32 {
        let b = &storage[i * size..(i + 1) * size];
        match t.dtype {
            StorageType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            StorageType::F64 => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
            StorageType::F16 => half_to_f32(u16::from_le_bytes([b[0], b[1]])),
            StorageType::BF16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
            _ => 0.0,
        }
    };
    let mut data = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        data.push(read(at));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Tensor {
        shape: t.shape.clone(),
        data,
    })
}

/// IEEE 754 half to single precision.
pub fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

fn load_safetensors(bytes: &[u8]) -> Result<StateDict, String> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("is a damaged safetensors file ({e})"))?;
    let mut tensors = BTreeMap::new();
    let mut integer_buffers = Vec::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let b = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            safetensors::Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            safetensors::Dtype::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            _ => {
                integer_buffers.push(name);
                continue;
            }
        };
        tensors.insert(name, Tensor { shape, data });
    }
    if tensors.is_empty() {
        return Err("holds no float tensors".into());
    }
    Ok(StateDict {
        tensors,
        integer_buffers,
        epoch: None,
        format: WeightsFormat::Safetensors,
    })
}

#[cfg(test)]
mod tests {
    use super::half_to_f32;

    #[test]
    fn halves_convert_exactly() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(half_to_f32(0x7bff), 65504.0);
        assert!(half_to_f32(0x7c00).is_infinite());
    }
}
