//! Writes a [`StateDict`] back out: as a `torch.save` checkpoint, as safetensors, or as a
//! burnpack (burn's own format).
//!
//! The point of each writer is that the file works where that format is native, without
//! icelens: the `.pt` loads with `torch.load(path, weights_only=True)` and
//! `model.load_state_dict(ckpt['model_state_dict'])`, the safetensors with
//! `safetensors.torch.load_file`, the burnpack with burn's `BurnpackStore`. So the writers follow
//! what those tools themselves write, byte for byte where it is cheap to (the torch pickle), and
//! they keep PyTorch's key order ([`StateDict::keys_in_order`]), since people compare key lists.
//!
//! Every writer takes the tensors as readers give them: contiguous, `data.len()` equal to the
//! product of `shape`. Integer buffers (`num_batches_tracked`) are written as int64 scalars with
//! their value from [`StateDict::integer_values`], or 0 where it is unknown.

use std::collections::HashMap;
use std::io::{Cursor, Write};

use super::{StateDict, KEY_ORDER_METADATA};

/// Folder every member of a written `.pt` lives in. torch names it after the file; its reader
/// accepts any single top folder, and so does icelens's.
const ARCHIVE_NAME: &str = "icelens_model";

/// Alignment of every member's data in a written `.pt`. torch (>= 2.1) writes 64 and records it
/// in `.storage_alignment`; `torch.load(mmap=True)` maps storages in place and relies on it.
const STORAGE_ALIGNMENT: u16 = 64;

/// One entry of the state_dict as written: a float tensor or an int64 scalar.
enum Entry<'a> {
    Float(&'a super::Tensor),
    Int(i64),
}

/// The state_dict's entries in PyTorch order.
fn entries(sd: &StateDict) -> Vec<(String, Entry<'_>)> {
    sd.keys_in_order()
        .into_iter()
        .map(|k| {
            let e = match sd.tensors.get(&k) {
                Some(t) => {
                    assert_eq!(
                        t.data.len(),
                        t.shape.iter().product::<usize>(),
                        "tensor `{k}`: data does not fill its shape"
                    );
                    Entry::Float(t)
                }
                None => Entry::Int(sd.integer_values.get(&k).copied().unwrap_or(0)),
            };
            (k, e)
        })
        .collect()
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes a `torch.save` checkpoint (the zip format of PyTorch >= 1.6) holding
/// `{'model_state_dict': OrderedDict(...), 'epoch': epoch}` (no `'epoch'` when `None`), as
/// `torch.save({'model_state_dict': model.state_dict(), 'epoch': e}, path)` writes it.
///
/// The archive has torch 2.x's members in torch's order (`data.pkl`, `.format_version`,
/// `.storage_alignment`, `byteorder`, `data/<key>` sorted as strings, `version`), all STORED and
/// each one's data 64-byte aligned. The pickle (protocol 2, as torch's default) uses only the
/// globals `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage` and
/// `torch.LongStorage`, so `torch.load(..., weights_only=True)` accepts it; it memoises as
/// Python's pickler does, so it equals torch's own pickle of the same state_dict (without the
/// `_metadata` attribute, which `load_state_dict` does not need). Float tensors are float32,
/// integer buffers int64 scalars (shape `()`), each right after its BatchNorm's `running_var`.
///
/// # Panics
///
/// If a tensor's data does not fill its shape (readers never produce such a tensor).
pub fn write_torch(sd: &StateDict, epoch: Option<i64>) -> Vec<u8> {
    let entries = entries(sd);
    let mut storages: Vec<(String, Vec<u8>)> = Vec::with_capacity(entries.len());
    let mut p = Pickler::default();
    p.out.extend_from_slice(b"\x80\x02"); // PROTO 2
    p.out.push(b'}'); // EMPTY_DICT
    p.put();
    if epoch.is_some() {
        p.out.push(b'('); // MARK: two items are set with SETITEMS
    }
    p.str("model_state_dict");
    // OrderedDict.__reduce__: the class called with no arguments, then its items.
    p.global("collections", "OrderedDict");
    p.out.push(b')'); // EMPTY_TUPLE
    p.out.push(b'R'); // REDUCE
    p.put();
    let items: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, (name, e))| (name.as_str(), e, i.to_string()))
        .collect();
    // Python's `_batch_setitems`: batches of 1000, a lone item with SETITEM.
    for batch in items.chunks(1000) {
        if batch.len() > 1 {
            p.out.push(b'(');
        }
        for (name, e, key) in batch {
            p.str(name);
            let (class, numel, shape, data) = match e {
                Entry::Float(t) => (
                    "FloatStorage",
                    t.data.len(),
                    t.shape.clone(),
                    f32_bytes(&t.data),
                ),
                Entry::Int(v) => ("LongStorage", 1, vec![], v.to_le_bytes().to_vec()),
            };
            p.tensor(class, key, numel, &shape);
            storages.push((key.clone(), data));
        }
        p.out.push(if batch.len() > 1 { b'u' } else { b's' });
    }
    if let Some(e) = epoch {
        p.str("epoch");
        p.int(e);
        p.out.push(b'u'); // SETITEMS
    } else {
        p.out.push(b's'); // SETITEM
    }
    p.out.push(b'.'); // STOP

    // torch writes `data/<key>` in the order of its keys sorted as strings.
    storages.sort_by(|a, b| a.0.cmp(&b.0));
    let mut members: Vec<(String, &[u8])> = vec![
        ("data.pkl".into(), &p.out),
        (".format_version".into(), b"1"),
        (".storage_alignment".into(), b"64"),
        ("byteorder".into(), b"little"),
    ];
    members.extend(
        storages
            .iter()
            .map(|(k, d)| (format!("data/{k}"), d.as_slice())),
    );
    members.push(("version".into(), b"3\n"));

    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in members {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default())
            .with_alignment(STORAGE_ALIGNMENT)
            .large_file(data.len() as u64 >= u32::MAX as u64);
        zip.start_file(format!("{ARCHIVE_NAME}/{name}"), opts)
            .and_then(|_| zip.write_all(data).map_err(Into::into))
            .expect("writing a zip member into memory cannot fail");
    }
    zip.finish()
        .expect("finishing a zip in memory cannot fail")
        .into_inner()
}

/// A protocol-2 pickle writer for exactly what `torch.save` emits for a state_dict, memoising
/// as CPython's `pickle.Pickler` does: every string, global and non-empty tuple gets a memo
/// slot (`BINPUT`, or `LONG_BINPUT` from 256), and the objects torch reuses (the globals, the
/// interned strings `'storage'` and `'cpu'`) are fetched back with `BINGET`.
#[derive(Default)]
struct Pickler {
    out: Vec<u8>,
    next: u32,
    /// Memo slots of the globals and interned strings, by `module.name` / `'string'`.
    reused: HashMap<String, u32>,
}

impl Pickler {
    fn put(&mut self) {
        let i = self.next;
        if i < 256 {
            self.out.extend_from_slice(&[b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        self.next += 1;
    }

    /// Fetches a memoised object, or writes it with `write` and remembers its slot.
    fn reuse(&mut self, key: String, write: impl FnOnce(&mut Self)) {
        if let Some(&i) = self.reused.get(&key) {
            if i < 256 {
                self.out.extend_from_slice(&[b'h', i as u8]);
            } else {
                self.out.push(b'j');
                self.out.extend_from_slice(&i.to_le_bytes());
            }
        } else {
            write(self);
            self.reused.insert(key, self.next - 1);
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.reuse(format!("{module}.{name}"), |p| {
            p.out.push(b'c');
            p.out
                .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
            p.put();
        });
    }

    /// `BINUNICODE` (protocol 2 has no short form).
    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self.put();
    }

    fn interned(&mut self, s: &str) {
        self.reuse(format!("'{s}'"), |p| p.str(s));
    }

    /// `save_long` of protocol 2: the shortest of BININT1, BININT2, BININT and LONG1.
    fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            // Two's complement, little-endian, as few bytes as keep the sign.
            let b = v.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let (top, next) = (b[n - 1], b[n - 2]);
                if (top == 0 && next & 0x80 == 0) || (top == 0xff && next & 0x80 != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[0x8a, n as u8]);
            self.out.extend_from_slice(&b[..n]);
        }
    }

    /// A tuple of ints: `EMPTY_TUPLE`, `TUPLE1..3` or `MARK ... TUPLE`, memoised unless empty.
    fn int_tuple(&mut self, items: &[i64]) {
        if items.is_empty() {
            self.out.push(b')');
            return;
        }
        if items.len() > 3 {
            self.out.push(b'(');
        }
        for v in items {
            self.int(*v);
        }
        self.out.push(match items.len() {
            1 => 0x85,
            2 => 0x86,
            3 => 0x87,
            _ => b't',
        });
        self.put();
    }

    /// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`, the
    /// storage being the persistent id `('storage', torch.<class>, key, 'cpu', numel)`.
    fn tensor(&mut self, class: &str, key: &str, numel: usize, shape: &[usize]) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'('); // MARK: the six arguments
        self.out.push(b'('); // MARK: the persistent id
        self.interned("storage");
        self.global("torch", class);
        self.str(key);
        self.interned("cpu");
        self.int(numel as i64);
        self.out.push(b't');
        self.put();
        self.out.push(b'Q'); // BINPERSID
        self.int(0); // storage offset
        let size: Vec<i64> = shape.iter().map(|d| *d as i64).collect();
        // Contiguous strides, as torch computes them (a zero-size dimension counts as 1).
        let mut stride = vec![1i64; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * (shape[i + 1].max(1) as i64);
        }
        self.int_tuple(&size);
        self.int_tuple(&stride);
        self.out.push(0x89); // NEWFALSE: requires_grad
        self.global("collections", "OrderedDict"); // backward hooks
        self.out.push(b')');
        self.out.push(b'R');
        self.put();
        self.out.push(b't');
        self.put();
        self.out.push(b'R');
        self.put();
    }
}

/// Metadata the safetensors and burnpack writers store: the state_dict's own, with `epoch` set
/// from [`StateDict::epoch`] (or removed) and the PyTorch key order under
/// [`KEY_ORDER_METADATA`], since both formats sort their tensors by name.
fn common_metadata(sd: &StateDict, keys: &[String]) -> Vec<(String, String)> {
    let mut m = sd.metadata.clone();
    m.remove(KEY_ORDER_METADATA);
    match sd.epoch {
        Some(e) => m.insert("epoch".into(), e.to_string()),
        None => m.remove("epoch"),
    };
    let order = serde_json::to_string(keys).expect("a list of strings serialises");
    m.insert(KEY_ORDER_METADATA.into(), order);
    m.into_iter().collect()
}

/// Writes safetensors with the `safetensors` crate (the same code as Python's
/// `safetensors.torch.save_file`): float32 tensors, integer buffers as I64 scalars (shape `[]`,
/// as `save_file` writes a 0-d tensor), and metadata `format = "pt"` (what Hugging Face loaders
/// check), the `epoch` if any, the state_dict's other metadata and the key order.
///
/// # Panics
///
/// If a tensor's data does not fill its shape (readers never produce such a tensor).
pub fn write_safetensors(sd: &StateDict) -> Vec<u8> {
    let entries = entries(sd);
    let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    let owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = entries
        .iter()
        .map(|(k, e)| match e {
            Entry::Float(t) => (
                k.clone(),
                safetensors::Dtype::F32,
                t.shape.clone(),
                f32_bytes(&t.data),
            ),
            Entry::Int(v) => (
                k.clone(),
                safetensors::Dtype::I64,
                vec![],
                v.to_le_bytes().to_vec(),
            ),
        })
        .collect();
    let views = owned.iter().map(|(k, dtype, shape, data)| {
        let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
            .expect("data fills its shape");
        (k.as_str(), view)
    });
    let mut metadata: HashMap<String, String> = common_metadata(sd, &keys).into_iter().collect();
    metadata.insert("format".into(), "pt".into());
    safetensors::serialize(views, Some(metadata)).expect("tensors that fill their shapes serialise")
}

/// Writes a burnpack (`.bpk`, burn's own format, via the `burn-pack` crate): float32 tensors
/// under their PyTorch names, integer buffers as I64 scalars, in PyTorch order. Metadata:
/// the state_dict's own, `format = "icelens-unet"`, `epoch` if any, the key order, then
/// `metadata` from the caller (which may override all but the key order), e.g.
/// `("trained_on", "synthetic scenes")` for a model card.
///
/// # Panics
///
/// If a tensor's data does not fill its shape (readers never produce such a tensor).
pub fn write_burnpack(sd: &StateDict, metadata: &[(&str, &str)]) -> Vec<u8> {
    use burn_pack::{Bytes, DType};
    let entries = entries(sd);
    let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    let tensors = entries
        .into_iter()
        .map(|(k, e)| match e {
            Entry::Float(t) => burn_pack::Tensor::new(
                k,
                DType::F32,
                t.shape.clone(),
                None,
                Bytes::from_bytes_vec(f32_bytes(&t.data)),
            ),
            Entry::Int(v) => burn_pack::Tensor::new(
                k,
                DType::I64,
                Vec::<usize>::new(),
                None,
                Bytes::from_bytes_vec(v.to_le_bytes().to_vec()),
            ),
        })
        .collect();
    let mut writer = burn_pack::Writer::new(tensors).with_metadata("format", "icelens-unet");
    let common = common_metadata(sd, &keys);
    for (k, v) in common.iter().filter(|(k, _)| k != "format") {
        writer = writer.with_metadata(k, v);
    }
    for (k, v) in metadata.iter().filter(|(k, _)| *k != KEY_ORDER_METADATA) {
        writer = writer.with_metadata(k, v);
    }
    writer
        .into_bytes()
        .expect("tensors that fill their shapes, with unique names, serialise")
        .to_vec()
}
