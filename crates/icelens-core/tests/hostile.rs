//! Files made by an attacker: each gets one clear error naming the file, in bounded time and
//! memory, and nothing is allocated before the file has shown it holds that much.
//!
//! The test binary counts every allocation of the calling thread ([`Peak`]), so "bounded
//! memory" is measured, not assumed: a reader that reserves what a header claims, or copies a
//! value 2^64 times, fails here even when it would eventually return an error.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use icelens_core::checkpoint::{load_state_dict, pickle};
use icelens_core::{npy, read_scene, ReadLimits};

/// The system allocator, recording the largest single allocation and the bytes live at once
/// on the current thread since the last [`reset`].
struct Peak;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static HIGH: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(delta: isize, size: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = HIGH.try_with(|h| h.set(h.get().max(v)));
    });
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize, layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize), 0);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        note(new as isize - layout.size() as isize, new);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Peak = Peak;

fn reset() {
    LIVE.with(|l| l.set(0));
    HIGH.with(|h| h.set(0));
    LARGEST.with(|m| m.set(0));
}

/// Runs `f` and returns its result with the peak live bytes and the largest allocation.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    reset();
    let out = f();
    let high = HIGH.with(|h| h.get()).max(0) as usize;
    (out, high, LARGEST.with(|m| m.get()))
}

const MB: usize = 1 << 20;

/// A torch.save-style archive (stored members) around a raw pickle and storages.
fn torch_zip(pkl: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("m/data.pkl", opts).unwrap();
    w.write_all(pkl).unwrap();
    for (name, bytes) in storages {
        w.start_file(format!("m/data/{name}"), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Loads a checkpoint expecting one error naming the file and containing `needle`, within
/// `max_bytes` of peak memory and a few seconds.
fn refused(name: &str, bytes: &[u8], needle: &str, max_bytes: usize) {
    let start = Instant::now();
    let (r, high, _) = measured(|| std::panic::catch_unwind(|| load_state_dict(name, bytes)));
    let msg = match r.expect("no panic") {
        Ok(sd) => panic!(
            "{name}: a hostile file was loaded ({} tensors)",
            sd.tensors.len()
        ),
        Err(e) => e.to_string(),
    };
    assert!(msg.starts_with(name), "{msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    assert!(high <= max_bytes, "{name}: peak {high} bytes > {max_bytes}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{name}: took {:?}",
        start.elapsed()
    );
}

/// `]` then `n` times DUP + TUPLE2: each step pairs the value with a copy of itself.
fn dup_bomb(n: usize) -> Vec<u8> {
    let mut p = b"\x80\x02]".to_vec();
    for _ in 0..n {
        p.extend_from_slice(b"2\x86");
    }
    p.push(b'.');
    p
}

/// The same through the memo: each step reads the memo twice and stores the pair.
fn memo_bomb(n: usize) -> Vec<u8> {
    let mut p = b"\x80\x02]q\x00".to_vec();
    for _ in 0..n {
        p.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    p.push(b'.');
    p
}

#[test]
fn copy_bombs_are_refused_within_the_budget() {
    // 370 bytes that ask for 2^64 values, as the attacker wrote them.
    let dup = dup_bomb(64);
    assert!(dup.len() < 400);
    let memo = memo_bomb(64);
    for (name, pkl) in [("dup.pt", dup), ("memo.pt", memo)] {
        let bytes = torch_zip(&pkl, &[]);
        refused(
            name,
            &bytes,
            "MiB of values",
            2 * pickle::VALUE_BUDGET as usize,
        );
    }
    // A few doublings are harmless and still read (the copies are real).
    let small = pickle::unpickle(&dup_bomb(10)).unwrap();
    let mut depth = 0;
    let mut v = &small;
    while let pickle::Value::Tuple(items) = v {
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], items[1]);
        v = &items[0];
        depth += 1;
    }
    assert_eq!(depth, 10);
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    // One TUPLE1 per two bytes: a million levels would overflow the stack when dropped.
    let mut p = b"\x80\x02]".to_vec();
    p.extend(std::iter::repeat_n(0x85, 1_000_000));
    p.push(b'.');
    refused("deep.pt", &torch_zip(&p, &[]), "nests containers", 64 * MB);
}

#[test]
fn many_dict_items_cost_linear_time_and_keep_python_semantics() {
    // 300 000 SETITEMs with distinct keys: quadratic key search would take minutes.
    let n = 300_000u32;
    let mut p = b"\x80\x02}(".to_vec();
    for i in 0..n {
        // As Python's pickler does: SETITEMS in batches of 1000.
        if i > 0 && i % 1000 == 0 {
            p.extend_from_slice(b"u(");
        }
        p.push(b'J');
        p.extend_from_slice(&(i as i32).to_le_bytes());
        p.push(b'N');
    }
    // A repeated key: keeps its first position, takes the last value.
    p.extend_from_slice(b"K\x05K\x07u.");
    let start = Instant::now();
    let v = pickle::unpickle(&p).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let pickle::Value::Dict(items) = v else {
        panic!("not a dict")
    };
    assert_eq!(items.len(), n as usize);
    assert_eq!(items[5], (pickle::Value::Int(5), pickle::Value::Int(7)));
    assert_eq!(items[6], (pickle::Value::Int(6), pickle::Value::None));
}

/// A pickle of `{'w': tensor}` where the tensor views storage `0` (`numel` floats) with the
/// given shape and stride.
fn one_tensor_pickle(numel: u32, shape: &[u64], stride: &[u64]) -> Vec<u8> {
    let mut p = b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    // Persistent id ('storage', torch.FloatStorage, '0', 'cpu', numel)
    p.extend_from_slice(
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ",
    );
    p.extend_from_slice(&numel.to_le_bytes());
    p.extend_from_slice(b"tQK\x00");
    let ints = |p: &mut Vec<u8>, v: &[u64]| {
        p.push(b'(');
        for x in v {
            p.push(0x8a);
            p.push(8);
            p.extend_from_slice(&x.to_le_bytes());
        }
        p.push(b't');
    };
    ints(&mut p, shape);
    ints(&mut p, stride);
    p.extend_from_slice(b"\x89NtRs.");
    p
}

#[test]
fn a_view_larger_than_its_storage_is_refused() {
    // A 4-byte storage seen as 60000 x 60000 (14 GB) through zero strides.
    let pkl = one_tensor_pickle(1, &[60_000, 60_000], &[0, 0]);
    let bytes = torch_zip(&pkl, &[("0", &1.5f32.to_le_bytes())]);
    refused("zero_stride.pt", &bytes, "is too large", 16 * MB);
    // 400 MB, under the per-tensor limit: the storage check refuses it.
    let pkl = one_tensor_pickle(1, &[10_000, 10_000], &[0, 0]);
    let bytes = torch_zip(&pkl, &[("0", &1.5f32.to_le_bytes())]);
    refused(
        "zero_stride2.pt",
        &bytes,
        "more than the 1 of its storage",
        16 * MB,
    );
    // Overlapping strides: 4 x 4 over 8 values.
    let pkl = one_tensor_pickle(8, &[4, 4], &[1, 1]);
    let bytes = torch_zip(&pkl, &[("0", &[0u8; 32])]);
    refused(
        "overlap.pt",
        &bytes,
        "more than the 8 of its storage",
        16 * MB,
    );
    // The honest view of the same storage loads.
    let pkl = one_tensor_pickle(8, &[2, 4], &[4, 1]);
    let mut data = Vec::new();
    for i in 0..8 {
        data.extend_from_slice(&(i as f32).to_le_bytes());
    }
    let sd = load_state_dict("ok.pt", &torch_zip(&pkl, &[("0", &data)])).unwrap();
    assert_eq!(
        sd.tensors["w"].data,
        (0..8).map(|i| i as f32).collect::<Vec<_>>()
    );
}

#[test]
fn sizes_from_a_file_never_overflow() {
    // Shape products past u64: checked, named, no panic.
    let pkl = one_tensor_pickle(1, &[1 << 40, 1 << 40], &[1, 1]);
    let bytes = torch_zip(&pkl, &[("0", &[0u8; 4])]);
    refused("overflow.pt", &bytes, "is too large", 16 * MB);
}

#[test]
fn a_zip_header_claiming_a_huge_member_reserves_nothing() {
    // A 64-byte storage whose local and central headers claim 900 MB uncompressed.
    let pkl = one_tensor_pickle(16, &[16], &[1]);
    let mut bytes = torch_zip(&pkl, &[("0", &[0u8; 64])]);
    let claim = 900_000_000u32.to_le_bytes();
    let name = b"m/data/0";
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(name.len()).position(|w| w == name) {
        let pos = at + i;
        // Local header: signature 30 bytes before the name; central: 46 bytes before.
        for (sig, head, size_at) in [(b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)] {
            if pos >= head && &bytes[pos - head..pos - head + 4] == sig {
                bytes[pos - head + size_at..pos - head + size_at + 4].copy_from_slice(&claim);
            }
        }
        at = pos + 1;
    }
    let (r, _, largest) = measured(|| load_state_dict("claims.pt", &bytes));
    // Whatever the zip reader makes of the lie, nothing near 900 MB was asked for.
    assert!(largest < 16 * MB, "largest allocation {largest}");
    if let Err(e) = r {
        assert!(e.to_string().starts_with("claims.pt"), "{e}");
    }
}

#[test]
fn npy_headers_are_parsed_without_panics() {
    let with_shape = |shape: &str| -> Vec<u8> {
        let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b
    };
    for (shape, needle) in [
        (")", "not a tuple"),
        ("é(1, 2)", "not a tuple"),
        ("(1, 2", "not a tuple"),
        ("(x, 2)", "bad shape entry"),
        ("(99999999999, 99999999999, 99999999999)", "overflows"),
    ] {
        let bytes = with_shape(shape);
        let r = std::panic::catch_unwind(|| npy::read(&bytes)).expect("no panic");
        let e = r.expect_err(shape);
        assert!(
            matches!(&e, npy::NpyError::Header(m) if m.contains(needle)),
            "{shape}: {e}"
        );
    }
    // A shape claiming 4 GB with no data: refused before any allocation of that size.
    let bytes = with_shape("(1000000000,)");
    let (r, _, largest) = measured(|| npy::read(&bytes));
    assert_eq!(
        r.unwrap_err(),
        npy::NpyError::Length {
            found: 0,
            needed: 4_000_000_000
        }
    );
    assert!(largest < MB, "largest allocation {largest}");
}

#[test]
fn scene_grids_are_bounded() {
    let name = common::FIXTURES[0];
    let bytes = common::fixture_bytes(name);
    let ok = read_scene(name, bytes.clone(), &ReadLimits::default()).unwrap();
    let cells = ok.grid_lines * ok.grid_samples;
    let limits = ReadLimits {
        max_grid_cells: cells - 1,
        ..ReadLimits::default()
    };
    let e = read_scene(name, bytes, &limits).unwrap_err().to_string();
    assert!(e.starts_with(name) && e.contains("2 km grid"), "{e}");
}
