//! The seed inputs of the fuzz targets that only icelens's own code can make (fuzz/seeds/):
//! scene headers as the Web Worker sends them, and small burnpack, safetensors and `.pt`
//! checkpoints from icelens's writers. Each must still be accepted by its reader, so that the
//! fuzzer starts from inputs that reach deep into the format. When a format changes, write
//! them again with `ICELENS_WRITE_FUZZ_SEEDS=1 cargo test -p icelens-core --test fuzz_seeds`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{fixture_bytes, FIXTURES};
use icelens_core::checkpoint::{
    load_state_dict, write_burnpack, write_safetensors, write_torch, StateDict, Tensor,
    WeightsFormat,
};
use icelens_core::synth::{generate, SynthSpec};
use icelens_core::transfer::{expected_arrays, join, split, Array, Parts};
use icelens_core::{read_scene, ReadLimits};

fn seeds(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

fn writing() -> bool {
    std::env::var_os("ICELENS_WRITE_FUZZ_SEEDS").is_some()
}

fn write_all(target: &str, files: Vec<(String, Vec<u8>)>) {
    let dir = seeds(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every seed of a target, which must have some.
fn read_all(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// A small state_dict with a BatchNorm's buffers, in PyTorch's order, and metadata.
fn small_state_dict() -> StateDict {
    let t = |shape: Vec<usize>, base: f32| Tensor {
        data: (0..shape.iter().product::<usize>())
            .map(|i| base + i as f32 * 0.25)
            .collect(),
        shape,
    };
    let mut tensors = BTreeMap::new();
    tensors.insert("conv.weight".to_string(), t(vec![2, 1, 3, 3], -1.0));
    tensors.insert("conv.bias".to_string(), t(vec![2], 0.5));
    for (k, base) in [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.1)] {
        tensors.insert(format!("bn.{k}"), t(vec![2], base));
    }
    tensors.insert("bn.running_var".to_string(), t(vec![2], 1.0));
    let order: Vec<String> = [
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    .map(String::from)
    .to_vec();
    StateDict {
        tensors,
        integer_buffers: vec!["bn.num_batches_tracked".into()],
        integer_values: [("bn.num_batches_tracked".to_string(), 21500)].into(),
        epoch: Some(3),
        format: WeightsFormat::PyTorch,
        order,
        metadata: BTreeMap::new(),
    }
}

/// Arrays of the kinds and lengths a header announces.
fn arrays_for(header: &str) -> Vec<Array> {
    expected_arrays(header)
        .unwrap()
        .into_iter()
        .map(|(f, n)| {
            if f {
                Array::F32(vec![0.0; n])
            } else {
                Array::U8(vec![0; n])
            }
        })
        .collect()
}

#[test]
fn scene_header_seeds_join() {
    if writing() {
        let mut files = vec![];
        for name in FIXTURES {
            let scene = read_scene(name, fixture_bytes(name), &ReadLimits::default()).unwrap();
            files.push((format!("{name}.json"), split(scene).header.into_bytes()));
        }
        let spec = SynthSpec::new(40, 30, 1);
        let bytes = generate(&spec).to_netcdf().unwrap();
        let scene = read_scene(&spec.file_name(), bytes, &ReadLimits::default()).unwrap();
        files.push(("synth_40x30.json".into(), split(scene).header.into_bytes()));
        write_all("transfer_join", files);
    }
    let all = read_all("transfer_join");
    assert!(all.len() >= 4);
    let mut with_charts = 0;
    for (name, bytes) in all {
        let header = String::from_utf8(bytes).unwrap();
        let arrays = arrays_for(&header);
        assert!(arrays.len() >= 4, "{name}");
        with_charts += arrays.iter().any(|a| matches!(a, Array::U8(_))) as usize;
        let scene = join(Parts { header, arrays }).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(scene.lines > 0 && scene.samples > 0, "{name}");
    }
    assert!(with_charts >= 1, "a seed with charts");
}

/// Whole scenes small enough for the fuzzer to mutate quickly (the fixtures are megabytes).
#[test]
fn scene_seeds_read() {
    if writing() {
        let mut files = vec![];
        for (lines, samples, seed) in [(40, 30, 1), (24, 56, 2)] {
            let spec = SynthSpec::new(lines, samples, seed);
            let bytes = generate(&spec).to_netcdf().unwrap();
            files.push((format!("synth_{lines}x{samples}.nc"), bytes));
        }
        write_all("read_scene", files);
    }
    for (name, bytes) in read_all("read_scene") {
        assert!(
            bytes.len() <= 262_144,
            "{name}: larger than the fuzzer's max_len"
        );
        let scene = read_scene("fuzz_prep.nc", bytes, &ReadLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(scene.charts.is_some(), "{name}");
    }
}

#[test]
fn checkpoint_seeds_load() {
    let sd = small_state_dict();
    if writing() {
        write_all(
            "load_burnpack",
            vec![
                (
                    "small.bpk".into(),
                    write_burnpack(&sd, &[("trained_on", "seeds")]),
                ),
                ("small_no_metadata.bpk".into(), write_burnpack(&sd, &[])),
            ],
        );
        write_all(
            "load_safetensors",
            vec![("icelens_small.safetensors".into(), write_safetensors(&sd))],
        );
        write_all(
            "load_checkpoint",
            vec![
                ("icelens_small.pt".into(), write_torch(&sd, sd.epoch)),
                ("icelens_small_no_epoch.pt".into(), write_torch(&sd, None)),
            ],
        );
    }
    for (target, format) in [
        ("load_burnpack", WeightsFormat::Burnpack),
        ("load_safetensors", WeightsFormat::Safetensors),
        ("load_checkpoint", WeightsFormat::PyTorch),
    ] {
        for (name, bytes) in read_all(target) {
            let back = load_state_dict(&name, &bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.format, format, "{name}");
            assert_eq!(back.tensors, sd.tensors, "{name}");
            assert_eq!(back.integer_values, sd.integer_values, "{name}");
            assert_eq!(back.keys_in_order(), sd.keys_in_order(), "{name}");
        }
    }
}
