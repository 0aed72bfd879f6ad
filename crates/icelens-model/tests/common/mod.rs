//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::Device;
use icelens_core::synth::{generate, SynthSpec};
use icelens_core::{read_scene, ReadLimits, Scene};
use icelens_model::{block_on, sample_patches, BurnUNet, TrainConfig, Trainer};

/// One wgpu device per test binary: the runtime cannot be initialised twice.
pub fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            Device::wgpu_options()
                .init()
                .expect("a wgpu adapter (install mesa-vulkan-drivers for a software one)")
        })
        .clone()
}

/// The shared fixtures and references (`../shared` beside the repository).
pub fn shared() -> PathBuf {
    std::env::var("ICELENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

pub fn reference(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("reference").join(name)).expect("reference file")
}

/// Largest absolute difference between two equally long slices; NaN when either holds a NaN
/// (or the same infinity) anywhere, so that `max_abs_diff(..) <= tol` fails on it and so does
/// `max_abs_diff(..) > tol`. (`fold(0.0, f32::max)` would skip NaNs: `f32::max` returns the
/// other operand.)
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "slices of different lengths");
    let mut max = 0f32;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        if d.is_nan() {
            return f32::NAN;
        }
        max = max.max(d);
    }
    max
}

/// Checks the per-pixel argmax of `got` (logits, `classes` planes of `plane` pixels each)
/// against PyTorch's (`argmax`, one class per pixel) wherever the reference logits `want` are
/// not a near-tie (top-1 above top-2 by more than 1e-3); ties go to the lowest class, as
/// `torch.argmax` breaks them. At least 90 % of the pixels must be compared, so a reference
/// that is all ties cannot make the check vacuous. Returns how many pixels were compared.
pub fn assert_argmax_matches(
    what: &str,
    classes: usize,
    got: &[f32],
    want: &[f32],
    argmax: &[u8],
) -> usize {
    let plane = argmax.len();
    assert_eq!(got.len(), classes * plane, "{what}: logits vs argmax size");
    assert_eq!(want.len(), classes * plane, "{what}: reference size");
    let mut compared = 0;
    for p in 0..plane {
        let top = argmax[p] as usize;
        assert!(top < classes, "{what}: reference class {top} at pixel {p}");
        let t1 = want[top * plane + p];
        let mut t2 = f32::NEG_INFINITY;
        for c in (0..classes).filter(|c| *c != top) {
            let v = want[c * plane + p];
            assert!(!v.is_nan(), "{what}: reference NaN at pixel {p}");
            t2 = t2.max(v);
        }
        assert!(
            (0..classes).all(|c| !got[c * plane + p].is_nan()),
            "{what}: NaN logit at pixel {p}"
        );
        if t1 - t2 > 1e-3 {
            let mine = (0..classes)
                .max_by(|a, b| {
                    got[a * plane + p]
                        .total_cmp(&got[b * plane + p])
                        .then(b.cmp(a))
                })
                .unwrap();
            assert_eq!(mine, top, "{what}: argmax at pixel {p}");
            compared += 1;
        }
    }
    assert!(
        compared > plane * 9 / 10,
        "{what}: only {compared} of {plane} pixels are not near-ties"
    );
    compared
}

/// A generated labelled scene, read as a user's file would be.
pub fn synth_scene(lines: usize, samples: usize, seed: u64) -> Scene {
    let spec = SynthSpec::new(lines, samples, seed);
    let bytes = generate(&spec).to_netcdf().unwrap();
    read_scene(&spec.file_name(), bytes, &ReadLimits::default()).unwrap()
}

/// Two training steps of batch 2 on 64 px patches of a generated scene, each with a finite
/// positive loss; the trainer, holding the trained model.
pub fn train_two_steps(net: BurnUNet) -> Trainer {
    let scene = synth_scene(160, 160, 5);
    let patches = sample_patches(&[&scene], 4, 64, 1).unwrap();
    let config = TrainConfig {
        batch_size: 2,
        steps_per_epoch: 2,
        patch_size: 64,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config, patches, Vec::new()).unwrap();
    for _ in 0..2 {
        let r = block_on(trainer.step()).unwrap();
        assert!(r.loss.is_finite() && r.loss > 0.0, "{r:?}");
    }
    trainer
}
