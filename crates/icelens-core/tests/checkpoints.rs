//! PyTorch checkpoints and safetensors from bytes, and every way they can be wrong.

mod common;

use std::io::{Cursor, Write};

use common::*;
use icelens_core::checkpoint::{load_state_dict, WeightsFormat};
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
