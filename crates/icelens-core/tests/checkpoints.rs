//! PyTorch checkpoints, safetensors and burnpacks from bytes, and every way they can be wrong;
//! and the writers of all three, checked by reading back and by the files' structure.

mod common;

use std::io::{Cursor, Write};

use common::*;
use icelens_core::checkpoint::{
    load_state_dict, write_burnpack, write_safetensors, write_torch, StateDict, WeightsFormat,
    KEY_ORDER_METADATA,
};
use rand::{Rng, SeedableRng};

fn zip_with(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn marinara_loads_with_every_tensor_of_the_manifest() {
    let sd = load_state_dict("pizza_marinara.pt", &reference_bytes("pizza_marinara.pt")).unwrap();
    assert_eq!(sd.format, WeightsFormat::PyTorch);
    assert_eq!(sd.epoch, Some(42));
    assert_eq!(sd.tensors.len() + sd.integer_buffers.len(), 114);
    // num_batches_tracked of the 18 BatchNorms (9 DoubleConvs).
    assert_eq!(sd.integer_buffers.len(), 18);
    let manifest: serde_json::Value =
        serde_json::from_slice(&reference_bytes("manifest.json")).unwrap();
    let text = manifest.to_string();
    for (name, t) in &sd.tensors {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} not in manifest"
        );
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
        assert!(t.data.iter().all(|v| v.is_finite()), "{name}");
    }
    assert_eq!(
        sd.tensors["input_block.double_conv.0.weight"].shape,
        vec![16, 24, 3, 3]
    );
    // A known value: running_var is positive, and weights are not all zero.
    assert!(sd.tensors["bridge.double_conv.double_conv.1.running_var"]
        .data
        .iter()
        .all(|v| *v > 0.0));
}

#[test]
fn any_top_folder_and_a_bare_state_dict_load() {
    // A bare OrderedDict {'w': tensor([1., 2.])} with its storage in `mymodel/data/0`.
    let pkl: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x02tq\x08QK\x00K\x02\x85q\tK\x01\x85q\n\x89h\x00)Rq\x0btq\x0cRq\rs.";
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = zip_with(&[("mymodel/data.pkl", pkl), ("mymodel/data/0", &data)]);
    let sd = load_state_dict("bare.pt", &bytes).unwrap();
    assert_eq!(sd.tensors["w"].data, vec![1.0, 2.0]);
    assert_eq!(sd.epoch, None);
}

fn expect_err(name: &str, bytes: &[u8], needle: &str) {
    let r = std::panic::catch_unwind(|| load_state_dict(name, bytes)).expect("no panic");
    let msg = r.expect_err("should fail").to_string();
    assert!(msg.starts_with(name), "{msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

#[test]
fn foreign_globals_are_refused_by_name() {
    // The classic exploit: os.system('ls').
    let pkl: &[u8] = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
    expect_err("evil.pt", &zip_with(&[("a/data.pkl", pkl)]), "`os.system`");
    let pkl: &[u8] = b"\x80\x02cbuiltins\neval\nq\x00.";
    expect_err(
        "evil2.pt",
        &zip_with(&[("a/data.pkl", pkl)]),
        "`builtins.eval`",
    );
    // STACK_GLOBAL form (protocol 4).
    let pkl: &[u8] = b"\x80\x04\x8c\x08builtins\x8c\x04exec\x93.";
    expect_err(
        "evil3.pt",
        &zip_with(&[("a/data.pkl", pkl)]),
        "`builtins.exec`",
    );
}

#[test]
fn broken_archives_name_the_problem() {
    let pt = reference_bytes("pizza_marinara.pt");
    for frac in [0.0001, 0.1, 0.5, 0.9, 0.999] {
        let cut = (pt.len() as f64 * frac) as usize;
        expect_err("cut.pt", &pt[..cut], "");
    }
    expect_err(
        "nopkl.pt",
        &zip_with(&[("x/other", b"1")]),
        "without data.pkl",
    );
    let pkl: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x02tq\x08QK\x00K\x02\x85q\tK\x01\x85q\n\x89h\x00)Rq\x0btq\x0cRq\rs.";
    expect_err(
        "nostorage.pt",
        &zip_with(&[("m/data.pkl", pkl)]),
        "member m/data/0 is missing",
    );
    expect_err(
        "short.pt",
        &zip_with(&[("m/data.pkl", pkl), ("m/data/0", &[0u8; 5])]),
        "storage should hold 2 values",
    );
    expect_err(
        "text.pt",
        b"hello, I am not a model",
        "not a model checkpoint",
    );
    expect_err("legacy.pt", b"\x80\x02\x8a\x0alegacy", "legacy");
}

#[test]
fn random_damage_never_panics() {
    let pt = reference_bytes("pizza_marinara.pt");
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(21);
    for _ in 0..60 {
        let mut b = pt.clone();
        // Damage the pickle and zip directory regions most of the time.
        for _ in 0..6 {
            let at = if rng.random_bool(0.5) {
                rng.random_range(0..40_000.min(b.len()))
            } else {
                rng.random_range(b.len() - 30_000..b.len())
            };
            b[at] = rng.random();
        }
        let _ = std::panic::catch_unwind(|| load_state_dict("flipped.pt", &b)).expect("no panic");
    }
}

#[test]
fn safetensors_round_trip() {
    let sd = load_state_dict("pizza_marinara.pt", &reference_bytes("pizza_marinara.pt")).unwrap();
    let bytes_of: Vec<(String, Vec<u8>, Vec<usize>)> = sd
        .tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes_of
        .iter()
        .map(|(k, b, s)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let st = safetensors::serialize(views, None).unwrap();
    let back = load_state_dict("marinara.safetensors", &st).unwrap();
    assert_eq!(back.format, WeightsFormat::Safetensors);
    assert_eq!(back.tensors, sd.tensors);
}

// ---- Writers: torch.save, safetensors and burnpack round trips ----

fn marinara() -> StateDict {
    load_state_dict("pizza_marinara.pt", &reference_bytes("pizza_marinara.pt")).unwrap()
}

/// With `ICELENS_EXPORT_DIR` set, written files are kept there for `scripts/verify_export.py`.
fn keep(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("ICELENS_EXPORT_DIR") {
        std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
    }
}

fn assert_same_weights(back: &StateDict, sd: &StateDict) {
    assert_eq!(back.tensors, sd.tensors);
    assert_eq!(back.integer_buffers.len(), sd.integer_buffers.len());
    assert_eq!(back.integer_values, sd.integer_values);
    assert_eq!(back.epoch, sd.epoch);
    assert_eq!(back.order, sd.order, "key order");
}

#[test]
fn marinara_keeps_pytorch_order_and_buffer_values() {
    let sd = marinara();
    assert_eq!(sd.order.len(), 114);
    assert_eq!(sd.order[0], "input_block.double_conv.0.weight");
    assert_eq!(sd.keys_in_order(), sd.order);
    assert_eq!(sd.integer_values.len(), 18);
    assert!(sd.integer_values.values().all(|v| *v == 21500));
    assert!(sd.metadata.is_empty());
}

#[test]
fn torch_export_round_trips() {
    let sd = marinara();
    let pt = write_torch(&sd, sd.epoch);
    keep("icelens_export_test.pt", &pt);
    let back = load_state_dict("export.pt", &pt).unwrap();
    assert_eq!(back.format, WeightsFormat::PyTorch);
    assert_same_weights(&back, &sd);
    // Writing what was read back gives the same bytes: the writer is deterministic.
    assert_eq!(write_torch(&back, back.epoch), pt);
    let no_epoch = load_state_dict("e.pt", &write_torch(&sd, None)).unwrap();
    assert_eq!(no_epoch.epoch, None);
    assert_eq!(no_epoch.tensors, sd.tensors);
}

#[test]
fn safetensors_export_round_trips() {
    let sd = marinara();
    let st = write_safetensors(&sd);
    keep("icelens_export_test.safetensors", &st);
    let back = load_state_dict("export.safetensors", &st).unwrap();
    assert_eq!(back.format, WeightsFormat::Safetensors);
    assert_same_weights(&back, &sd);
    assert_eq!(back.metadata["format"], "pt");
    assert_eq!(back.metadata["epoch"], "42");
    assert!(!back.metadata.contains_key(KEY_ORDER_METADATA));
    // Plain safetensors view: int64 scalars for the buffers.
    let raw = safetensors::SafeTensors::deserialize(&st).unwrap();
    let nbt = raw
        .tensor("input_block.double_conv.1.num_batches_tracked")
        .unwrap();
    assert_eq!(nbt.dtype(), safetensors::Dtype::I64);
    assert!(nbt.shape().is_empty());
    assert_eq!(nbt.data(), &21500i64.to_le_bytes());
}

#[test]
fn burnpack_export_round_trips() {
    let sd = marinara();
    let bpk = write_burnpack(&sd, &[("trained_on", "synthetic scenes")]);
    keep("icelens_export_test.bpk", &bpk);
    assert!(bpk.starts_with(b"NRUB"), "burnpack magic, little-endian");
    let back = load_state_dict("export.bpk", &bpk).unwrap();
    assert_eq!(back.format, WeightsFormat::Burnpack);
    assert_same_weights(&back, &sd);
    assert_eq!(back.metadata["format"], "icelens-unet");
    assert_eq!(back.metadata["epoch"], "42");
    assert_eq!(back.metadata["trained_on"], "synthetic scenes");
    assert!(!back.metadata.contains_key(KEY_ORDER_METADATA));
    // Metadata survives a second trip, and the caller's comes last.
    let again = load_state_dict(
        "again.bpk",
        &write_burnpack(&back, &[("trained_on", "real scenes")]),
    )
    .unwrap();
    assert_eq!(again.metadata["trained_on"], "real scenes");
    assert_eq!(again.order, sd.order);
    // Plain burn-pack view.
    let reader = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bpk)).unwrap();
    let tensors = reader.into_tensors().unwrap();
    assert_eq!(tensors.len(), 114);
    let nbt = tensors
        .iter()
        .find(|t| t.name == "bridge.double_conv.double_conv.1.num_batches_tracked")
        .unwrap();
    assert_eq!(nbt.dtype, burn_pack::DType::I64);
    assert!(nbt.shape.is_empty());
    let w = tensors
        .iter()
        .find(|t| t.name == "input_block.double_conv.0.weight")
        .unwrap();
    assert_eq!(w.dtype, burn_pack::DType::F32);
    assert_eq!(w.shape.to_vec(), vec![16, 24, 3, 3]);
}

#[test]
fn without_an_order_keys_sort_with_buffers_after_running_var() {
    let mut sd = marinara();
    let torch_order = sd.order.clone();
    sd.order.clear();
    sd.integer_values.clear();
    let keys = sd.keys_in_order();
    assert_eq!(keys.len(), 114);
    for (i, k) in keys.iter().enumerate() {
        if let Some(module) = k.strip_suffix(".num_batches_tracked") {
            assert_eq!(keys[i - 1], format!("{module}.running_var"));
        }
    }
    // Within each BatchNorm the order is PyTorch's, and the buffers are written as 0.
    let back = load_state_dict("sorted.pt", &write_torch(&sd, None)).unwrap();
    assert_eq!(back.order, keys);
    assert_eq!(back.integer_values.len(), 18);
    assert!(back.integer_values.values().all(|v| *v == 0));
    assert_ne!(
        keys, torch_order,
        "marinara's modules are not registered in name order"
    );
}

/// Opcodes of a protocol-2 pickle, with the globals it names; fails on any opcode torch's
/// state_dict pickles do not use.
fn scan_pickle(p: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut ops = Vec::new();
    let mut globals = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let op = p[i];
        ops.push(op);
        i += 1;
        let arg = match op {
            0x80 | b'q' | b'h' | b'K' => 1,
            b'r' | b'j' | b'J' => 4,
            b'M' => 2,
            0x8a => 1 + p[i] as usize,
            b'X' => 4 + u32::from_le_bytes(p[i..i + 4].try_into().unwrap()) as usize,
            b'c' => {
                let end = i + p[i..].iter().position(|b| *b == b'\n').unwrap();
                let end2 = end + 1 + p[end + 1..].iter().position(|b| *b == b'\n').unwrap();
                globals.push(format!(
                    "{}.{}",
                    std::str::from_utf8(&p[i..end]).unwrap(),
                    std::str::from_utf8(&p[end + 1..end2]).unwrap()
                ));
                end2 + 1 - i
            }
            b'}' | b')' | b'(' | b't' | b'u' | b's' | b'R' | b'Q' | 0x85..=0x89 => 0,
            b'.' => {
                assert_eq!(i, p.len(), "STOP ends the pickle");
                0
            }
            _ => panic!("unexpected opcode 0x{op:02x} at {}", i - 1),
        };
        i += arg;
    }
    (ops, globals)
}

#[test]
fn torch_export_has_torch_structure() {
    use icelens_core::checkpoint::pickle::{self, StorageType, Value};
    let sd = marinara();
    let pt = write_torch(&sd, Some(7));
    let mut zip = zip::ZipArchive::new(Cursor::new(&pt[..])).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    let mut storages: Vec<String> = (0..114)
        .map(|i| format!("icelens_model/data/{i}"))
        .collect();
    storages.sort();
    let mut expected: Vec<String> = [
        "data.pkl",
        ".format_version",
        ".storage_alignment",
        "byteorder",
    ]
    .iter()
    .map(|n| format!("icelens_model/{n}"))
    .collect();
    expected.extend(storages);
    expected.push("icelens_model/version".into());
    assert_eq!(names, expected);
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).unwrap();
        assert_eq!(
            f.compression(),
            zip::CompressionMethod::Stored,
            "{:?}",
            f.name()
        );
        // Data start from the local header itself: 30 bytes, name, extra field.
        let h = f.header_start() as usize;
        assert_eq!(&pt[h..h + 4], b"PK\x03\x04");
        let n = u16::from_le_bytes([pt[h + 26], pt[h + 27]]) as usize;
        let e = u16::from_le_bytes([pt[h + 28], pt[h + 29]]) as usize;
        assert_eq!(
            (h + 30 + n + e) % 64,
            0,
            "{:?} is not 64-byte aligned",
            f.name()
        );
    }
    let mut read = |name: &str| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut out).unwrap();
        out
    };
    assert_eq!(read("icelens_model/version"), b"3\n");
    assert_eq!(read("icelens_model/byteorder"), b"little");
    assert_eq!(read("icelens_model/data/0").len(), 16 * 24 * 9 * 4);
    let pkl = read("icelens_model/data.pkl");
    assert!(pkl.starts_with(b"\x80\x02"), "protocol 2");

    let (ops, globals) = scan_pickle(&pkl);
    let allowed = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch.FloatStorage",
        "torch.LongStorage",
    ];
    let mut distinct = globals.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{distinct:?}");
    assert!(distinct.iter().all(|g| allowed.contains(&g.as_str())));
    // Each global is written once and fetched from the memo afterwards, as Python does.
    assert_eq!(globals.len(), 4);
    assert_eq!(ops.iter().filter(|o| **o == b'Q').count(), 114);

    let root = pickle::unpickle(&pkl).unwrap();
    assert_eq!(root.get("epoch"), Some(&Value::Int(7)));
    let Some(Value::Dict(items)) = root.get("model_state_dict") else {
        panic!("model_state_dict is not a dict");
    };
    assert_eq!(items.len(), 114);
    for (i, (k, v)) in items.iter().enumerate() {
        let name = k.as_str().unwrap();
        assert_eq!(name, sd.order[i]);
        let Value::Tensor(t) = v else {
            panic!("{name} is not a tensor")
        };
        assert_eq!(t.storage, i.to_string());
        assert_eq!(t.offset, 0);
        match sd.tensors.get(name) {
            Some(want) => {
                assert_eq!(t.dtype, StorageType::F32);
                assert_eq!(t.shape, want.shape);
                assert_eq!(t.storage_len, want.data.len());
                let mut stride = 1;
                for (d, s) in t.shape.iter().zip(&t.stride).rev() {
                    assert_eq!(*s, stride, "{name} is not contiguous");
                    stride *= d;
                }
            }
            None => {
                assert!(name.ends_with("num_batches_tracked"));
                assert_eq!(t.dtype, StorageType::I64);
                assert!(t.shape.is_empty() && t.stride.is_empty());
                assert_eq!(t.storage_len, 1);
            }
        }
    }
}

#[test]
fn damaged_burnpacks_name_the_problem() {
    let bpk = write_burnpack(&marinara(), &[]);
    for frac in [0.0, 0.00001, 0.001, 0.01, 0.3, 0.9, 0.99999] {
        let cut = ((bpk.len() as f64 * frac) as usize).max(4);
        expect_err("cut.bpk", &bpk[..cut], "burnpack");
    }
    // Header: a future version, and metadata larger than the file.
    let mut b = bpk.clone();
    b[4] = 0x99;
    expect_err("version.bpk", &b, "burnpack");
    let mut b = bpk.clone();
    b[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
    expect_err("huge.bpk", &b, "burnpack");
    let mut b = bpk.clone();
    b[6..10].copy_from_slice(&3u32.to_le_bytes());
    expect_err("tiny.bpk", &b, "burnpack");
    // Garbled CBOR metadata.
    let mut b = bpk.clone();
    for x in &mut b[10..60] {
        *x = 0xff;
    }
    expect_err("cbor.bpk", &b, "burnpack");
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
    for _ in 0..200 {
        let mut b = bpk.clone();
        for _ in 0..4 {
            let at = rng.random_range(4..12_000.min(b.len()));
            b[at] = rng.random();
        }
        let _ = std::panic::catch_unwind(|| load_state_dict("flipped.bpk", &b)).expect("no panic");
    }
}

#[test]
fn damaged_exports_never_panic() {
    let sd = marinara();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(8);
    for bytes in [write_torch(&sd, sd.epoch), write_safetensors(&sd)] {
        for _ in 0..40 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                let at = rng.random_range(9..b.len());
                b[at] = rng.random();
            }
            let _ = std::panic::catch_unwind(|| load_state_dict("flipped", &b)).expect("no panic");
        }
    }
}
