//! Model weights from the files users have: PyTorch checkpoints (`torch.save` zip archives),
//! safetensors and burnpack (burn's own format), read from bytes so the browser can use them
//! as they are; [`export`] writes all three back.
//!
//! burn's own PyTorch reader needs a file path, which a browser does not have; this module
//! reads the zip with the `zip` crate and the pickle with a restricted unpickler
//! ([`pickle`]) that builds nothing but containers and tensors.

pub mod export;
pub mod pickle;

pub use export::{write_burnpack, write_safetensors, write_torch};

use std::collections::{BTreeMap, BTreeSet};
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
    /// burn's `.bpk` container ([`burn_pack`]).
    Burnpack,
}

/// The named float tensors of a model. Integer buffers such as `num_batches_tracked` are
/// listed by name (inference does not need them); the values of scalar ones are kept in
/// `integer_values` so that an exported checkpoint gives back what was loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    pub tensors: BTreeMap<String, Tensor>,
    pub integer_buffers: Vec<String>,
    /// Values of the scalar integer buffers whose file holds them. `num_batches_tracked`
    /// counts the batches a BatchNorm saw in training; it only matters when training resumes
    /// (or with `momentum=None`), but a re-exported checkpoint should not silently reset it.
    /// Writers store a buffer missing here as 0.
    pub integer_values: BTreeMap<String, i64>,
    /// `epoch` of a training checkpoint, if it has one.
    pub epoch: Option<i64>,
    pub format: WeightsFormat,
    /// Every key (float tensors and integer buffers) in the order the file gives them; empty
    /// when unknown. PyTorch's order is module registration order, which the names cannot
    /// recover and `tensors` (sorted) loses, yet `model.state_dict()` users see and diff it, so
    /// the writers follow it (see [`StateDict::keys_in_order`]). safetensors and burnpack sort
    /// their keys, so icelens's writers record this order in their metadata.
    pub order: Vec<String>,
    /// Free-form key/value metadata of the file (safetensors `__metadata__`, burnpack
    /// metadata): `format`, `epoch`, or a note for a model card such as "trained on synthetic
    /// scenes". torch.save checkpoints have none.
    pub metadata: BTreeMap<String, String>,
}

/// Metadata key under which icelens's safetensors and burnpack writers record the PyTorch key
/// order, as a JSON array of strings. Readers take it out of [`StateDict::metadata`] and into
/// [`StateDict::order`].
pub const KEY_ORDER_METADATA: &str = "icelens.key_order";

impl StateDict {
    /// Every key, float tensors and integer buffers, in PyTorch's order: [`Self::order`] as far
    /// as it names keys that exist, then the rest sorted, each integer buffer placed right after
    /// its module's `running_var` (as `BatchNorm` registers weight, bias, running_mean,
    /// running_var, num_batches_tracked).
    pub fn keys_in_order(&self) -> Vec<String> {
        let ints: BTreeSet<&str> = self.integer_buffers.iter().map(String::as_str).collect();
        let known = |k: &str| self.tensors.contains_key(k) || ints.contains(k);
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(self.tensors.len() + ints.len());
        for k in &self.order {
            if known(k) && seen.insert(k.as_str()) {
                out.push(k.clone());
            }
        }
        for k in self.tensors.keys() {
            if seen.insert(k.as_str()) {
                out.push(k.clone());
            }
        }
        for b in &self.integer_buffers {
            if !seen.insert(b.as_str()) {
                continue;
            }
            let running_var = match b.rsplit_once('.') {
                Some((module, _)) => format!("{module}.running_var"),
                None => "running_var".to_string(),
            };
            match out.iter().position(|k| *k == running_var) {
                Some(at) => out.insert(at + 1, b.clone()),
                None => out.push(b.clone()),
            }
        }
        out
    }
}

/// The order a writer recorded ([`KEY_ORDER_METADATA`]) if it lists exactly the keys present,
/// else the file's own order.
fn restore_order(stored: Option<String>, file_order: Vec<String>) -> Vec<String> {
    let Some(stored) = stored.and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok()) else {
        return file_order;
    };
    let want: BTreeSet<&String> = file_order.iter().collect();
    let got: BTreeSet<&String> = stored.iter().collect();
    if stored.len() == file_order.len() && got == want {
        stored
    } else {
        file_order
    }
}

/// Why a file's weights cannot be read. [`load_state_dict`] gives it to the user inside a
/// [`FileError`] that names the file; each message is a sentence fragment after that name.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("is a damaged zip archive ({0})")]
    Zip(#[from] zip::result::ZipError),
    #[error("is a zip archive without data.pkl, so not a torch.save checkpoint")]
    NoPickle,
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error(transparent)]
    Pickle(#[from] pickle::PickleError),
    #[error("holds no state_dict (a dict of tensors)")]
    NoStateDict,
    #[error("holds no float tensors")]
    NoFloatTensors,
    #[error("tensor `{name}`: {problem}")]
    Tensor { name: String, problem: TensorError },
    #[error("is a damaged safetensors file ({0})")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("is a damaged burnpack file ({0})")]
    Burnpack(#[from] burn_pack::Error),
    #[error(
        "is a PyTorch file in the legacy (pre-1.6) format; re-save it with a current torch.save"
    )]
    Legacy,
    #[error("is not a model checkpoint (neither a PyTorch .pt zip, safetensors nor burnpack)")]
    NotWeights,
}

/// A member of a torch.save zip that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("member {0} is missing from the archive")]
    Missing(String),
    #[error("member {name} is larger than {limit} bytes")]
    TooLarge { name: String, limit: u64 },
    #[error("member {name} cannot be read ({source})")]
    Unreadable {
        name: String,
        source: std::io::Error,
    },
}

/// What is wrong with one tensor of a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error("its tensors together need more than {} MiB, far more than any U-Net", MAX_TENSOR_BYTES >> 20)]
    Budget,
    #[error("its shape {0:?} is too large")]
    Shape(Vec<usize>),
    #[error("its storage should hold {values} values but has {bytes} bytes")]
    ShortStorage { values: usize, bytes: usize },
    #[error("its view {shape:?} has {numel} values, more than the {storage} of its storage")]
    View {
        shape: Vec<usize>,
        numel: usize,
        storage: usize,
    },
    #[error("its strides overflow")]
    Strides,
    #[error("its view reaches past the end of its storage")]
    PastStorage,
    #[error("holds {bytes} bytes for {numel} values")]
    Bytes { bytes: usize, numel: usize },
}

impl TensorError {
    fn of(self, name: &str) -> WeightsError {
        WeightsError::Tensor {
            name: name.to_string(),
            problem: self,
        }
    }
}

/// Largest checkpoint member icelens decompresses, and largest tensor it builds.
const MAX_MEMBER_BYTES: u64 = 1 << 30;
const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Bytes of float32 tensors one checkpoint may make in all: a budget for the whole file, so
/// that many tensors (or many views of one storage) cannot add up to more than any U-Net of
/// the challenge needs (the largest is a few MB) by orders of magnitude.
pub const MAX_TENSOR_BYTES: u64 = 1 << 30;

/// What is left of [`MAX_TENSOR_BYTES`] while a checkpoint is read.
struct Budget(u64);

impl Budget {
    fn new() -> Self {
        Budget(MAX_TENSOR_BYTES)
    }

    /// Takes room for `numel` float32 values, or says why not.
    fn take(&mut self, numel: usize) -> Result<(), TensorError> {
        let bytes = (numel as u64)
            .checked_mul(4)
            .filter(|b| *b <= self.0)
            .ok_or(TensorError::Budget)?;
        self.0 -= bytes;
        Ok(())
    }
}

/// Elements of a shape, with every product checked.
fn element_count(shape: &[usize]) -> Result<usize, TensorError> {
    shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|n| {
            (*n as u64)
                .checked_mul(4)
                .is_some_and(|b| b <= MAX_MEMBER_BYTES)
        })
        .ok_or_else(|| TensorError::Shape(shape.to_vec()))
}

/// Whether a file's first bytes (9 are enough) are those of model weights: a torch.save
/// zip, a burnpack, or a safetensors file (an 8-byte header length, then its JSON header).
pub fn looks_like_weights(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"NRUB")
        || (head.len() > 9 && head[8] == b'{' && !head.starts_with(b"CDF"))
}

/// Reads the weights of a checkpoint, recognising the format by content.
pub fn load_state_dict(file: &str, bytes: &[u8]) -> Result<StateDict, FileError> {
    read_state_dict(bytes).map_err(|e| FileError::file(file, e.to_string()))
}

/// [`load_state_dict`] without a file name, for callers that handle the cases apart.
pub fn read_state_dict(bytes: &[u8]) -> Result<StateDict, WeightsError> {
    if bytes.starts_with(b"PK\x03\x04") {
        load_torch_zip(bytes)
    } else if bytes.starts_with(&burn_pack::MAGIC_NUMBER.to_le_bytes()) {
        load_burnpack(bytes)
    } else if bytes.starts_with(b"\x80") && bytes.len() > 2 && bytes[1] <= 5 {
        Err(WeightsError::Legacy)
    } else if looks_like_safetensors(bytes) {
        load_safetensors(bytes)
    } else {
        Err(WeightsError::NotWeights)
    }
}

fn looks_like_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    n > 1 && n < bytes.len() as u64 && bytes[8] == b'{'
}

fn load_torch_zip(bytes: &[u8]) -> Result<StateDict, WeightsError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))?;
    let pkl = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or(WeightsError::NoPickle)?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let program = read_member(&mut zip, &pkl, MAX_PICKLE_BYTES)?;
    let root = pickle::unpickle(&program)?;
    let (dict, epoch) = match root.get("model_state_dict").or(root.get("state_dict")) {
        Some(d) => (d, root.get("epoch").and_then(as_int)),
        None => (&root, None),
    };
    let Value::Dict(items) = dict else {
        return Err(WeightsError::NoStateDict);
    };
    let mut tensors = BTreeMap::new();
    let mut integer_buffers = Vec::new();
    let mut integer_values = BTreeMap::new();
    let mut order = Vec::new();
    let mut budget = Budget::new();
    // Each storage is read (and inflated) once, however many tensors view it; the stored
    // bytes count against the same budget as the tensors made from them.
    let mut storages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in items {
        let (Some(name), Value::Tensor(t)) = (k.as_str(), v) else {
            continue;
        };
        order.push(name.to_string());
        match t.dtype {
            StorageType::F32 | StorageType::F16 | StorageType::BF16 | StorageType::F64 => {
                let member = format!("{prefix}data/{}", t.storage);
                if !storages.contains_key(&member) {
                    let storage = read_member(&mut zip, &member, MAX_MEMBER_BYTES)
                        .map_err(|e| TensorError::from(e).of(name))?;
                    budget.take(storage.len() / 4).map_err(|e| e.of(name))?;
                    storages.insert(member.clone(), storage);
                }
                let storage = storages.get(&member).map(Vec::as_slice).unwrap_or_default();
                let tensor = materialise(t, storage, &mut budget).map_err(|e| e.of(name))?;
                tensors.insert(name.to_string(), tensor);
            }
            _ => {
                integer_buffers.push(name.to_string());
                // A damaged integer buffer is no reason to refuse the weights: its value
                // is simply not kept.
                let member = format!("{prefix}data/{}", t.storage);
                if let Some(v) = read_member(&mut zip, &member, MAX_INT_STORAGE_BYTES)
                    .ok()
                    .and_then(|storage| int_scalar(t, &storage))
                {
                    integer_values.insert(name.to_string(), v);
                }
            }
        }
    }
    finish(
        tensors,
        integer_buffers,
        integer_values,
        epoch,
        WeightsFormat::PyTorch,
        order,
        BTreeMap::new(),
    )
}

/// Every reader's last step: what it collected becomes a state_dict, or the file is refused
/// when it holds no float tensor, whatever its format.
fn finish(
    tensors: BTreeMap<String, Tensor>,
    integer_buffers: Vec<String>,
    integer_values: BTreeMap<String, i64>,
    epoch: Option<i64>,
    format: WeightsFormat,
    order: Vec<String>,
    metadata: BTreeMap<String, String>,
) -> Result<StateDict, WeightsError> {
    if tensors.is_empty() {
        return Err(WeightsError::NoFloatTensors);
    }
    Ok(StateDict {
        tensors,
        integer_buffers,
        integer_values,
        epoch,
        format,
        order,
        metadata,
    })
}

/// Largest integer-buffer storage read for its value (they are scalars).
const MAX_INT_STORAGE_BYTES: u64 = 1 << 16;

/// The value of a one-element integer tensor, if its view lies inside its storage.
fn int_scalar(t: &TensorRef, storage: &[u8]) -> Option<i64> {
    if t.shape.iter().any(|d| *d != 1) || t.offset >= t.storage_len {
        return None;
    }
    let size = t.dtype.size();
    let at = t.offset.checked_mul(size)?;
    let b = storage.get(at..at.checked_add(size)?)?;
    int_from_le(t.dtype, b)
}

/// A little-endian integer (or bool) element as i64.
fn int_from_le(dtype: StorageType, b: &[u8]) -> Option<i64> {
    Some(match dtype {
        StorageType::I64 => i64::from_le_bytes(b.try_into().ok()?),
        StorageType::I32 => i32::from_le_bytes(b.try_into().ok()?) as i64,
        StorageType::I16 => i16::from_le_bytes(b.try_into().ok()?) as i64,
        StorageType::I8 => *b.first()? as i8 as i64,
        StorageType::U8 | StorageType::Bool => *b.first()? as i64,
        _ => return None,
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
) -> Result<Vec<u8>, MemberError> {
    let archive_len = zip.clone().into_inner().into_inner().len() as u64;
    let too_large = || MemberError::TooLarge {
        name: name.to_string(),
        limit,
    };
    let member = zip
        .by_name(name)
        .map_err(|_| MemberError::Missing(name.to_string()))?;
    if member.size() > limit {
        return Err(too_large());
    }
    // Reserve no more than the archive itself holds: a header may claim anything, and a
    // stored member (the torch.save layout) cannot be larger than the archive.
    let mut out = Vec::with_capacity(member.size().min(archive_len) as usize);
    // `take` bounds the bytes actually inflated, whatever the header claims.
    member
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| MemberError::Unreadable {
            name: name.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(out)
}

/// Copies a strided view out of its storage, converting to f32, with every index checked.
///
/// A view with more elements than its storage (strides of 0, or overlapping ones) is refused:
/// torch.save never writes one for a parameter, and it would let a 4-byte storage become a
/// tensor of any size.
fn materialise(t: &TensorRef, storage: &[u8], budget: &mut Budget) -> Result<Tensor, TensorError> {
    let size = t.dtype.size();
    if (t.storage_len as u128) * (size as u128) > storage.len() as u128 {
        return Err(TensorError::ShortStorage {
            values: t.storage_len,
            bytes: storage.len(),
        });
    }
    let numel = element_count(&t.shape)?;
    if numel > t.storage_len {
        return Err(TensorError::View {
            shape: t.shape.clone(),
            numel,
            storage: t.storage_len,
        });
    }
    budget.take(numel)?;
    if numel > 0 {
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (d, s)| {
                a.checked_add((d - 1).checked_mul(*s)?)
            })
            .ok_or(TensorError::Strides)?;
        if last >= t.storage_len {
            return Err(TensorError::PastStorage);
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

fn load_safetensors(bytes: &[u8]) -> Result<StateDict, WeightsError> {
    let st = safetensors::SafeTensors::deserialize(bytes)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
    let mut metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let stored_order = metadata.remove(KEY_ORDER_METADATA);
    let epoch = metadata.get("epoch").and_then(|e| e.trim().parse().ok());
    let mut tensors = BTreeMap::new();
    let mut integer_buffers = Vec::new();
    let mut integer_values = BTreeMap::new();
    // Offset order: the only order a safetensors file has of its own.
    let file_order = header.offset_keys();
    for name in &file_order {
        let view = st.tensor(name)?;
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
            dtype => {
                integer_buffers.push(name.clone());
                let int = match dtype {
                    safetensors::Dtype::I64 => Some(StorageType::I64),
                    safetensors::Dtype::I32 => Some(StorageType::I32),
                    safetensors::Dtype::I16 => Some(StorageType::I16),
                    safetensors::Dtype::I8 => Some(StorageType::I8),
                    safetensors::Dtype::U8 => Some(StorageType::U8),
                    safetensors::Dtype::BOOL => Some(StorageType::Bool),
                    _ => None,
                };
                if let Some(v) = int
                    .filter(|_| shape.iter().all(|d| *d == 1))
                    .and_then(|t| int_from_le(t, b))
                {
                    integer_values.insert(name.clone(), v);
                }
                continue;
            }
        };
        tensors.insert(name.clone(), Tensor { shape, data });
    }
    finish(
        tensors,
        integer_buffers,
        integer_values,
        epoch,
        WeightsFormat::Safetensors,
        restore_order(stored_order, file_order),
        metadata,
    )
}

/// Reads a burnpack. burn-pack checks the header, the CBOR metadata (size, nesting depth,
/// tensor count) and that every tensor's bytes lie inside the file before it allocates for
/// them; icelens adds its own per-tensor size limit and converts floats to f32.
fn load_burnpack(bytes: &[u8]) -> Result<StateDict, WeightsError> {
    use burn_pack::DType;
    let reader = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes.to_vec()))?;
    let mut metadata = reader.metadata().clone();
    let stored_order = metadata.remove(KEY_ORDER_METADATA);
    let epoch = metadata.get("epoch").and_then(|e| e.trim().parse().ok());
    let mut tensors = BTreeMap::new();
    let mut integer_buffers = Vec::new();
    let mut integer_values = BTreeMap::new();
    // `into_tensors` sorts by name; the writer's order comes back from the metadata.
    let mut file_order = Vec::new();
    let mut budget = Budget::new();
    for t in reader.into_tensors()? {
        let (name, dtype, shape, _, b) = t.into_parts()?;
        let shape = shape.to_vec();
        let numel = element_count(&shape).map_err(|e| e.of(&name))?;
        file_order.push(name.clone());
        let size = match dtype {
            DType::F32 | DType::Flex32 => 4,
            DType::F64 => 8,
            DType::F16 | DType::BF16 => 2,
            _ => {
                let int = match dtype {
                    DType::I64 => Some(StorageType::I64),
                    DType::I32 => Some(StorageType::I32),
                    DType::I16 => Some(StorageType::I16),
                    DType::I8 => Some(StorageType::I8),
                    DType::U8 => Some(StorageType::U8),
                    _ => None,
                };
                if let Some(v) = int.filter(|_| numel == 1).and_then(|t| int_from_le(t, &b)) {
                    integer_values.insert(name.clone(), v);
                }
                integer_buffers.push(name);
                continue;
            }
        };
        if Some(b.len() as u64) != (numel as u64).checked_mul(size) {
            return Err(TensorError::Bytes {
                bytes: b.len(),
                numel,
            }
            .of(&name));
        }
        budget.take(numel).map_err(|e| e.of(&name))?;
        let data: Vec<f32> = match dtype {
            DType::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            _ => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        };
        tensors.insert(name, Tensor { shape, data });
    }
    finish(
        tensors,
        integer_buffers,
        integer_values,
        epoch,
        WeightsFormat::Burnpack,
        restore_order(stored_order, file_order),
        metadata,
    )
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
