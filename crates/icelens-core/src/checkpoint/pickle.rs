//! A restricted unpickler: just enough of Python's pickle to read a PyTorch state_dict.
//!
//! A pickle is a program; Python's own unpickler will call any global it names, which is why
//! loading an untrusted `.pt` in Python can run arbitrary code. This machine knows only the
//! opcodes that plain containers, numbers, strings and tensors need, and only the globals a
//! state_dict uses (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter` and the `torch.*Storage` classes). Anything else is
//! refused with its name. All reads are bounds-checked; the memo and stack are capped.
//!
//! A pickle can also be a bomb without naming any global: `DUP` and memo reads copy a value,
//! so 64 `DUP`s of one list ask for 2^64 values from a 370-byte file. Every value on the stack
//! and in the memo therefore carries its size in bytes and its nesting depth, computed in O(1)
//! from its parts as it is built, and every copy is charged against one byte budget for the
//! whole pickle ([`VALUE_BUDGET`]); nesting is capped so that neither the reader nor dropping
//! its result can exhaust the call stack. Dict keys are made unique once, at the end, with a
//! hash map, so a pickle of n `SETITEM`s costs O(n), not O(n²).

use std::collections::HashMap;

/// Element type of a tensor storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageType {
    pub fn size(self) -> usize {
        match self {
            StorageType::F64 | StorageType::I64 => 8,
            StorageType::F32 | StorageType::I32 => 4,
            StorageType::F16 | StorageType::BF16 | StorageType::I16 => 2,
            StorageType::I8 | StorageType::U8 | StorageType::Bool => 1,
        }
    }

    fn from_class(name: &str) -> Option<StorageType> {
        Some(match name {
            "FloatStorage" => StorageType::F32,
            "HalfStorage" => StorageType::F16,
            "BFloat16Storage" => StorageType::BF16,
            "DoubleStorage" => StorageType::F64,
            "LongStorage" => StorageType::I64,
            "IntStorage" => StorageType::I32,
            "ShortStorage" => StorageType::I16,
            "CharStorage" => StorageType::I8,
            "ByteStorage" => StorageType::U8,
            "BoolStorage" => StorageType::Bool,
            _ => return None,
        })
    }
}

/// A tensor as the pickle describes it: a view into a storage that lives in another member.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: String,
    pub dtype: StorageType,
    pub storage_len: usize,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(StorageType),
}

/// A value of the pickled object graph.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Dicts and OrderedDicts, in insertion order.
    Dict(Vec<(Value, Value)>),
    Tensor(TensorRef),
    #[doc(hidden)]
    Global(GlobalRef),
    #[doc(hidden)]
    Storage {
        key: String,
        dtype: StorageType,
        len: usize,
    },
}

/// Opaque handle of an allowed global (kept private in meaning).
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalRef(Global);

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks a string key up in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

const MAX_STACK: usize = 100_000;
const MAX_MEMO: usize = 1_000_000;
const MAX_DIMS: usize = 8;
/// Deepest nesting of containers; a state_dict with its optimizer state nests about 6 deep.
const MAX_DEPTH: u32 = 100;
/// Bytes of values one pickle may build or copy in all (stack, memo and result together,
/// counted as they are made and never given back). A torch state_dict's pickle describes
/// tensors, not their data, so even large models stay in the low megabytes.
pub const VALUE_BUDGET: u64 = 256 << 20;

/// A value with what it costs: its bytes in memory (counted as [`Value`] nodes plus their
/// strings and byte payloads) and its nesting depth.
#[derive(Clone)]
struct Sized {
    v: Value,
    bytes: u64,
    depth: u32,
}

const NODE: u64 = std::mem::size_of::<Value>() as u64;

impl Sized {
    /// A value with no children.
    fn leaf(v: Value) -> Sized {
        let payload = match &v {
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Tensor(t) => t.storage.len() + 8 * (t.shape.len() + t.stride.len()),
            Value::Storage { key, .. } => key.len(),
            _ => 0,
        } as u64;
        Sized {
            v,
            bytes: NODE + payload,
            depth: 0,
        }
    }

    /// A container of `items`, whose sizes are known.
    fn container(items: Vec<Sized>, make: impl FnOnce(Vec<Value>) -> Value) -> Sized {
        let bytes = NODE + items.iter().map(|s| s.bytes).sum::<u64>();
        let depth = 1 + items.iter().map(|s| s.depth).max().unwrap_or(0);
        Sized {
            v: make(items.into_iter().map(|s| s.v).collect()),
            bytes,
            depth,
        }
    }
}

enum Slot {
    Mark,
    V(Sized),
}

/// Why a pickle was refused. A pickle is a program from an untrusted file: each way it can be
/// malformed or hostile is a variant, so a caller (or a test) can tell a refused global from a
/// truncated file without reading the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    #[error("pickle ends early at byte {0}")]
    Truncated(usize),
    #[error("pickle text is not UTF-8")]
    NotUtf8,
    #[error("pickle has an unterminated text line")]
    UnterminatedLine,
    #[error("pickle protocol {0} is newer than any known")]
    Protocol(u8),
    #[error("pickle uses opcode 0x{op:02x} at byte {at}, which a state_dict does not need")]
    Opcode { op: u8, at: usize },
    #[error("refers to the Python global `{module}.{name}`; icelens only loads tensors and dicts, never code")]
    Global { module: String, name: String },
    #[error("pickle builds more than {} MiB of values (copies of copies?), far beyond any state_dict", VALUE_BUDGET >> 20)]
    Budget,
    #[error("pickle stack grows beyond any state_dict's needs")]
    Stack,
    #[error("pickle memo grows beyond any state_dict's needs")]
    Memo,
    #[error("pickle nests containers more than {MAX_DEPTH} deep")]
    Depth,
    #[error("pickle refers to memo entry {0} that was never stored")]
    MissingMemo(u32),
    #[error("storage key `{0}` is not a plain name")]
    StorageKey(String),
    #[error("pickle integer wider than 64 bits")]
    WideInteger,
    /// A well-formed pickle that does not describe a state_dict, or a stack used against its
    /// rules; the text says which rule.
    #[error("{0}")]
    Structure(&'static str),
}

/// Runs a pickle and returns the object it builds.
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        spent: 0,
    };
    let mut v = m.run()?;
    unique_keys(&mut v)?;
    Ok(v)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Slot>,
    memo: HashMap<u32, Sized>,
    /// Bytes of values built or copied so far, against [`VALUE_BUDGET`].
    spent: u64,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or(PickleError::Truncated(self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(PickleError::UnterminatedLine)?;
        let s = String::from_utf8(rest[..n].to_vec()).map_err(|_| PickleError::NotUtf8)?;
        self.pos += n + 1;
        Ok(s)
    }
    fn text(&mut self, n: usize) -> Result<String, PickleError> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| PickleError::NotUtf8)
    }

    /// Charges `bytes` against the pickle's budget.
    fn charge(&mut self, bytes: u64) -> Result<(), PickleError> {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > VALUE_BUDGET {
            return Err(PickleError::Budget);
        }
        Ok(())
    }
    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        self.push_sized(Sized::leaf(v))
    }
    fn push_sized(&mut self, v: Sized) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::Stack);
        }
        if v.depth > MAX_DEPTH {
            return Err(PickleError::Depth);
        }
        self.charge(NODE)?;
        self.stack.push(Slot::V(v));
        Ok(())
    }
    /// Pushes a copy of `v`, charging its whole size: the copy is deep.
    fn push_copy(&mut self, v: &Sized) -> Result<(), PickleError> {
        self.charge(v.bytes)?;
        let copy = v.clone();
        self.push_sized(copy)
    }
    fn pop(&mut self) -> Result<Value, PickleError> {
        Ok(self.pop_sized()?.v)
    }
    fn pop_sized(&mut self) -> Result<Sized, PickleError> {
        match self.stack.pop() {
            Some(Slot::V(v)) => Ok(v),
            Some(Slot::Mark) => Err(PickleError::Structure("pickle pops a mark as a value")),
            None => Err(PickleError::Structure("pickle pops from an empty stack")),
        }
    }
    fn top(&mut self) -> Result<&mut Sized, PickleError> {
        match self.stack.last_mut() {
            Some(Slot::V(v)) => Ok(v),
            _ => Err(PickleError::Structure(
                "pickle expects a value on the stack",
            )),
        }
    }
    /// Adds `items` to the container on top of the stack with `add`, keeping its size and
    /// depth up to date.
    fn extend_top(
        &mut self,
        items: Vec<Sized>,
        add: impl FnOnce(&mut Value, Vec<Value>) -> Result<(), PickleError>,
    ) -> Result<(), PickleError> {
        let bytes: u64 = items.iter().map(|s| s.bytes).sum();
        let depth = 1 + items.iter().map(|s| s.depth).max().unwrap_or(0);
        let top = self.top()?;
        add(&mut top.v, items.into_iter().map(|s| s.v).collect())?;
        top.bytes = top.bytes.saturating_add(bytes);
        top.depth = top.depth.max(depth);
        if top.depth > MAX_DEPTH {
            return Err(PickleError::Depth);
        }
        Ok(())
    }
    fn pop_mark(&mut self) -> Result<Vec<Sized>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or(PickleError::Structure("pickle has no mark to pop to"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .filter_map(|s| match s {
                Slot::V(v) => Some(v),
                Slot::Mark => None,
            })
            .collect())
    }
    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        if self.memo.len() >= MAX_MEMO {
            return Err(PickleError::Memo);
        }
        let bytes = self.top()?.bytes;
        self.charge(bytes)?;
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }
    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self
            .memo
            .remove(&key)
            .ok_or(PickleError::MissingMemo(key))?;
        let pushed = self.push_copy(&v);
        self.memo.insert(key, v);
        pushed
    }

    fn global(&self, module: &str, name: &str) -> Result<Value, PickleError> {
        let g = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", class) => match StorageType::from_class(class) {
                Some(t) => Global::Storage(t),
                None => return Err(refused(module, name)),
            },
            _ => return Err(refused(module, name)),
        };
        Ok(Value::Global(GlobalRef(g)))
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let v = self.u8()?;
                    if v > 5 {
                        return Err(PickleError::Protocol(v));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only
                    self.u64()?;
                }
                b'.' => return self.pop(),
                b'(' => {
                    if self.stack.len() >= MAX_STACK {
                        return Err(PickleError::Stack);
                    }
                    self.stack.push(Slot::Mark)
                }
                b'}' => self.push(Value::Dict(vec![]))?,
                b']' => self.push(Value::List(vec![]))?,
                b')' => self.push(Value::Tuple(vec![]))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_sized(Sized::container(items, Value::Tuple))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_sized(Sized::container(items, Value::List))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return Err(PickleError::Structure(
                            "pickle builds a dict from an odd number of values",
                        ));
                    }
                    let dict = Sized::container(items, |v| Value::Dict(pairs(v)));
                    self.push_sized(dict)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(PickleError::Structure(
                            "pickle builds a tuple from too few values",
                        ));
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop_sized()?);
                    }
                    items.reverse();
                    self.push_sized(Sized::container(items, Value::Tuple))?
                }
                b'a' => {
                    let v = self.pop_sized()?;
                    self.extend_top(vec![v], append)?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, append)?
                }
                b's' => {
                    let v = self.pop_sized()?;
                    let k = self.pop_sized()?;
                    self.extend_top(vec![k, v], set_items)?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return Err(PickleError::Structure(
                            "pickle builds a dict from an odd number of values",
                        ));
                    }
                    self.extend_top(items, set_items)?
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    // MEMOIZE
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.push(Value::Int(v))?
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push(Value::Int(v))?
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.push(Value::Int(v))?
                }
                0x8a => {
                    // LONG1
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(PickleError::WideInteger);
                    }
                    let mut v: i64 = 0;
                    for (i, x) in b.iter().enumerate() {
                        v |= (*x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(a)))?
                }
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'N' => self.push(Value::None)?,
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.push(Value::Str(s))?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.push(Value::Str(s))?
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?)
                        .map_err(|_| PickleError::Structure("pickle string too long"))?;
                    let s = self.text(n)?;
                    self.push(Value::Str(s))?
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(&module, &name)?;
                    self.push(g)?
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (module.as_str(), name.as_str()) else {
                        return Err(PickleError::Structure(
                            "pickle names a global with non-strings",
                        ));
                    };
                    let g = self.global(m, n)?;
                    self.push(g)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = call(f, args)?;
                    self.push_sized(Sized::leaf(v))?
                }
                b'b' => {
                    // BUILD: sets attributes (a state_dict's `_metadata`); icelens ignores them.
                    self.pop()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent(pid)?;
                    self.push(v)?
                }
                b'0' => {
                    self.stack.pop();
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push_copy(&v)?
                }
                _ => return Err(PickleError::Opcode { op, at }),
            }
        }
    }
}

fn refused(module: &str, name: &str) -> PickleError {
    PickleError::Global {
        module: module.to_string(),
        name: name.to_string(),
    }
}

/// Key/value pairs from an even-length list (checked by the caller).
fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn append(target: &mut Value, items: Vec<Value>) -> Result<(), PickleError> {
    match target {
        Value::List(l) => {
            l.extend(items);
            Ok(())
        }
        _ => Err(PickleError::Structure("pickle appends to a non-list")),
    }
}

/// Adds key/value pairs to a dict. Keys repeated later are merged by [`unique_keys`] at the
/// end, so that each assignment is O(1).
fn set_items(target: &mut Value, items: Vec<Value>) -> Result<(), PickleError> {
    match target {
        Value::Dict(d) => {
            d.extend(pairs(items));
            Ok(())
        }
        _ => Err(PickleError::Structure("pickle sets items on a non-dict")),
    }
}

/// How a dict key compares, as Python hashes it; `None` for keys that are only equal to
/// themselves (tensors, storages).
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Key>),
}

fn key(v: &Value) -> Result<Option<Key>, PickleError> {
    Ok(Some(match v {
        Value::None => Key::None,
        // Python: True == 1 and hash(True) == hash(1).
        Value::Bool(b) => Key::Int(*b as i64),
        Value::Int(i) => Key::Int(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Key::Int(*f as i64),
        Value::Float(f) => Key::Float(f.to_bits()),
        Value::Str(s) => Key::Str(s.clone()),
        Value::Bytes(b) => Key::Bytes(b.clone()),
        Value::Tuple(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match key(i)? {
                    Some(k) => out.push(k),
                    None => return Ok(None),
                }
            }
            Key::Tuple(out)
        }
        Value::List(_) | Value::Dict(_) => {
            return Err(PickleError::Structure(
                "pickle uses a list or dict as a dict key",
            ))
        }
        Value::Tensor(_) | Value::Global(_) | Value::Storage { .. } => return Ok(None),
    }))
}

/// Gives every dict of `v` unique keys as Python's dict assignment would: a repeated key keeps
/// its first position and takes its last value. Depth is bounded by [`MAX_DEPTH`].
fn unique_keys(v: &mut Value) -> Result<(), PickleError> {
    match v {
        Value::Tuple(items) | Value::List(items) => {
            for i in items {
                unique_keys(i)?;
            }
        }
        Value::Dict(items) => {
            let mut at: HashMap<Key, usize> = HashMap::new();
            let mut out: Vec<(Value, Value)> = Vec::with_capacity(items.len());
            for (k, mut val) in std::mem::take(items) {
                unique_keys(&mut val)?;
                match key(&k)? {
                    Some(h) => match at.get(&h) {
                        Some(&i) => out[i].1 = val,
                        None => {
                            at.insert(h, out.len());
                            out.push((k, val));
                        }
                    },
                    None => out.push((k, val)),
                }
            }
            *items = out;
        }
        _ => {}
    }
    Ok(())
}

fn int(v: &Value) -> Result<i64, PickleError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(PickleError::Structure(
            "expected an integer in a tensor description",
        )),
    }
}

fn dims(v: &Value) -> Result<Vec<usize>, PickleError> {
    match v {
        Value::Tuple(items) | Value::List(items) if items.len() <= MAX_DIMS => items
            .iter()
            .map(|x| {
                usize::try_from(int(x)?).map_err(|_| PickleError::Structure("negative tensor size"))
            })
            .collect(),
        _ => Err(PickleError::Structure(
            "expected a size tuple in a tensor description",
        )),
    }
}

/// `BINPERSID`: `('storage', StorageClass, key, location, numel)`.
fn persistent(pid: Value) -> Result<Value, PickleError> {
    let Value::Tuple(items) = pid else {
        return Err(PickleError::Structure("persistent id is not a tuple"));
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(GlobalRef(Global::Storage(dtype))), key, _location, numel]
            if tag == "storage" =>
        {
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => return Err(PickleError::Structure("storage key is not a string")),
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(PickleError::StorageKey(key));
            }
            let len = usize::try_from(int(numel)?)
                .map_err(|_| PickleError::Structure("negative storage size"))?;
            Ok(Value::Storage {
                key,
                dtype: *dtype,
                len,
            })
        }
        _ => Err(PickleError::Structure(
            "persistent id is not a tensor storage",
        )),
    }
}

fn call(f: Value, args: Value) -> Result<Value, PickleError> {
    let Value::Global(GlobalRef(g)) = f else {
        return Err(PickleError::Structure(
            "pickle calls something that is not an allowed global",
        ));
    };
    let Value::Tuple(args) = args else {
        return Err(PickleError::Structure(
            "pickle calls with arguments that are not a tuple",
        ));
    };
    match g {
        Global::OrderedDict => Ok(Value::Dict(vec![])),
        Global::RebuildTensor => {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            let [Value::Storage { key, dtype, len }, offset, size, stride, ..] = args.as_slice()
            else {
                return Err(PickleError::Structure(
                    "_rebuild_tensor_v2 without a storage",
                ));
            };
            let t = TensorRef {
                storage: key.clone(),
                dtype: *dtype,
                storage_len: *len,
                offset: usize::try_from(int(offset)?)
                    .map_err(|_| PickleError::Structure("negative offset"))?,
                shape: dims(size)?,
                stride: dims(stride)?,
            };
            if t.shape.len() != t.stride.len() {
                return Err(PickleError::Structure(
                    "tensor size and stride differ in length",
                ));
            }
            Ok(Value::Tensor(t))
        }
        Global::RebuildParameter => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err(PickleError::Structure(
                "_rebuild_parameter without a tensor",
            )),
        },
        Global::Storage(_) => Err(PickleError::Structure("pickle calls a storage class")),
    }
}
