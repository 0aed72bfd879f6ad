//! `.pt` files icelens writes, decoded by a reader that shares no code with icelens's:
//! Python's own `zipfile` and `pickle` with torch's globals mapped to numpy
//! (`scripts/read_pt_independently.py`; needs python3 with numpy, which
//! `scripts/setup.sh test` installs, and fails when they are missing).
//!
//! icelens's reader reading back what icelens's writer wrote would pass if both shared a
//! mistake; this reader is independent, and it also decodes the checkpoint PyTorch itself
//! wrote, so the chain PyTorch file -> icelens -> exported file is compared end to end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use icelens_core::checkpoint::{load_state_dict, write_torch, StateDict};
use serde_json::{json, Map, Value};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/read_pt_independently.py")
}

fn tmp(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("icelens-export-independent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs the independent reader: (exit code, its output).
fn read_independently(pt: &Path, mode: &str, source: &Path) -> (i32, String) {
    let out = Command::new("python3")
        .arg(script())
        .arg(pt)
        .arg(mode)
        .arg(source)
        .output()
        .expect("python3 runs (with numpy: scripts/setup.sh test installs both)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// What the writer was given, for the reader to compare against: every entry in the order
/// the `.pt` must have, float values as their bits.
fn manifest(sd: &StateDict, epoch: Option<i64>) -> Value {
    let order = sd.keys_in_order();
    let mut tensors = Map::new();
    for k in &order {
        let v = match sd.tensors.get(k) {
            Some(t) => json!({
                "dtype": "float32",
                "shape": t.shape,
                "bits": t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            }),
            None => json!({
                "dtype": "int64",
                "shape": [],
                "value": sd.integer_values.get(k).copied().unwrap_or(0),
            }),
        };
        tensors.insert(k.clone(), v);
    }
    json!({ "epoch": epoch, "order": order, "tensors": tensors })
}

fn write_manifest(name: &str, sd: &StateDict, epoch: Option<i64>) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, serde_json::to_vec(&manifest(sd, epoch)).unwrap()).unwrap();
    path
}

fn write_pt(name: &str, sd: &StateDict, epoch: Option<i64>) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, write_torch(sd, epoch)).unwrap();
    path
}

fn marinara() -> StateDict {
    load_state_dict("pizza_marinara.pt", &reference_bytes("pizza_marinara.pt")).unwrap()
}

/// A state_dict whose values a writer could get wrong without icelens's reader noticing:
/// distinct `num_batches_tracked` (one beyond 32 bits, one zero) and floats with unusual bits.
fn unusual() -> StateDict {
    let mut sd = marinara();
    let buffers = sd.integer_buffers.clone();
    assert_eq!(buffers.len(), 18);
    for (i, b) in buffers.iter().enumerate() {
        let v = match i {
            0 => 0,
            1 => 5_000_000_007,
            _ => 1000 + 37 * i as i64,
        };
        sd.integer_values.insert(b.clone(), v);
    }
    let w = sd
        .tensors
        .get_mut("input_block.double_conv.0.weight")
        .unwrap();
    let specials = [
        -0.0f32,
        f32::from_bits(1), // smallest subnormal
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::from_bits(0x7fc0_1234), // a NaN with a payload
        f32::NEG_INFINITY,
    ];
    w.data[..specials.len()].copy_from_slice(&specials);
    sd
}

#[test]
fn exported_pt_equals_pytorchs_checkpoint_read_independently() {
    let sd = marinara();
    let pt = write_pt("marinara.pt", &sd, sd.epoch);
    // Against the checkpoint PyTorch wrote (decoded by the same independent reader).
    let original = shared().join("reference/pizza_marinara.pt");
    let (code, out) = read_independently(&pt, "--same-as", &original);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok: 114 entries") && out.contains("'num_batches_tracked': 18"),
        "{out}"
    );
    assert!(out.contains("epoch 42"), "{out}");
    // And against what the writer was given.
    let m = write_manifest("marinara.json", &sd, sd.epoch);
    let (code, out) = read_independently(&pt, "--expect", &m);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn exported_pt_keeps_every_bit_and_buffer_value() {
    let sd = unusual();
    for (epoch, tag) in [(Some(7), "epoch"), (None, "no_epoch")] {
        let pt = write_pt(&format!("unusual_{tag}.pt"), &sd, epoch);
        let m = write_manifest(&format!("unusual_{tag}.json"), &sd, epoch);
        let (code, out) = read_independently(&pt, "--expect", &m);
        assert_eq!(code, 0, "{tag}: {out}");
        assert!(out.contains("'num_batches_tracked': 18"), "{out}");
    }
    // A state_dict without a recorded order: the writer's own order (each buffer after its
    // BatchNorm's running_var) is what the file must hold.
    let mut unordered = sd.clone();
    unordered.order.clear();
    let pt = write_pt("unordered.pt", &unordered, None);
    let m = write_manifest("unordered.json", &unordered, None);
    let (code, out) = read_independently(&pt, "--expect", &m);
    assert_eq!(code, 0, "{out}");
}

/// The comparison can fail: files that differ from the expectation in one value, one buffer,
/// the key order or the epoch are each reported.
#[test]
fn the_independent_reader_reports_each_kind_of_difference() {
    let sd = unusual();
    let m = write_manifest("want.json", &sd, Some(3));

    let mut one_value = sd.clone();
    let t = one_value
        .tensors
        .get_mut("bridge.double_conv.double_conv.1.running_var")
        .unwrap();
    t.data[5] = f32::from_bits(t.data[5].to_bits() + 1); // one ulp
    let mut one_buffer = sd.clone();
    *one_buffer
        .integer_values
        .get_mut("bridge.double_conv.double_conv.4.num_batches_tracked")
        .unwrap() += 1;
    let mut order = sd.clone();
    order.order.swap(0, 1);
    let mut zero_sign = sd.clone();
    zero_sign
        .tensors
        .get_mut("input_block.double_conv.0.weight")
        .unwrap()
        .data[0] = 0.0; // +0.0 where -0.0 was

    for (what, bad, epoch, want) in [
        ("one value", &one_value, Some(3), "running_var: 1 of"),
        (
            "one buffer",
            &one_buffer,
            Some(3),
            "num_batches_tracked: 1 of 1",
        ),
        ("key order", &order, Some(3), "key order differs first at 0"),
        ("sign of zero", &zero_sign, Some(3), "0.weight: 1 of"),
        ("epoch", &sd, Some(4), "epoch 4, expected 3"),
        ("no epoch", &sd, None, "top-level keys"),
    ] {
        let pt = write_pt("bad.pt", bad, epoch);
        let (code, out) = read_independently(&pt, "--expect", &m);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(want), "{what}: expected `{want}` in: {out}");
    }
    // Not a checkpoint at all.
    let junk = tmp("junk.pt");
    std::fs::write(&junk, b"PK\x03\x04 not really").unwrap();
    let (code, out) = read_independently(&junk, "--expect", &m);
    assert_ne!(code, 0, "{out}");
}
