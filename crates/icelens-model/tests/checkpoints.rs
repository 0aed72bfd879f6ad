//! Architectures other than marinara's, and state_dicts that do not fit.

use std::collections::BTreeMap;

mod common;

use common::shared;
use icelens_core::checkpoint::{load_state_dict, StateDict, Tensor, WeightsFormat};
use icelens_model::cpu::Feature;
use icelens_model::{Architecture, Kind, ModelError, SicHead, UNet};

/// A state_dict with deterministic pseudo-random weights for an architecture.
fn synthetic(arch: &Architecture) -> StateDict {
    let mut tensors = BTreeMap::new();
    let mut seed = 1u32;
    for (name, shape) in arch.expected() {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (seed >> 8) as f32 / (1 << 24) as f32;
                if name.ends_with("running_var") {
                    0.5 + u
                } else {
                    (u - 0.5) * 0.4
                }
            })
            .collect();
        tensors.insert(name, Tensor { shape, data });
    }
    StateDict {
        tensors,
        integer_buffers: vec![],
        integer_values: BTreeMap::new(),
        epoch: None,
        format: WeightsFormat::Safetensors,
        order: vec![],
        metadata: BTreeMap::new(),
    }
}

#[test]
fn six_and_eight_level_nets_with_a_regression_head_are_inferred() {
    for (filters, heads, params) in [
        (vec![16, 32, 32, 32, 32, 32], [1, 7, 8], 261_008),
        (vec![16, 32, 32, 32, 32, 32, 32, 32], [12, 7, 8], 353_867),
        (vec![16, 32, 64, 64], [12, 7, 8], 491_723),
    ] {
        let arch = Architecture {
            filters: filters.clone(),
            in_channels: 24,
            head_outputs: heads,
            sic: if heads[0] == 1 {
                SicHead::Regression
            } else {
                SicHead::Classification
            },
            kind: Kind::Plain,
        };
        assert_eq!(arch.parameter_count(), params, "{filters:?}");
        let sd = synthetic(&arch);
        let net = UNet::from_state_dict(&sd).unwrap();
        assert_eq!(net.arch, arch);
        // Any input size works, even below 2^levels and odd.
        for (h, w) in [(67, 45), (3, 5)] {
            let out = net.forward(&Feature::zeros(24, h, w));
            assert_eq!((out.sic.c, out.sic.h, out.sic.w), (heads[0], h, w));
            assert_eq!((out.floe.c, out.floe.h, out.floe.w), (8, h, w));
        }
    }
}

#[test]
fn missing_and_misshapen_tensors_are_listed() {
    let sd = load_state_dict(
        "pizza_marinara.pt",
        &std::fs::read(shared().join("reference/pizza_marinara.pt")).unwrap(),
    )
    .unwrap();
    let mut broken = sd.clone();
    broken
        .tensors
        .remove("expand_blocks.1.double_conv.double_conv.4.running_var");
    broken
        .tensors
        .get_mut("sod_feature_map.feature_out.bias")
        .unwrap()
        .shape = vec![6];
    let err = UNet::from_state_dict(&broken).unwrap_err();
    // Every problem is listed, typed, for a caller to show or compare.
    match &err {
        ModelError::DoesNotFit { problems, .. } => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("{other:?}"),
    }
    let err = err.to_string();
    assert!(
        err.contains("`expand_blocks.1.double_conv.double_conv.4.running_var` is missing"),
        "{err}"
    );
    assert!(
        err.contains("`sod_feature_map.feature_out.bias` has shape [6], expected [7]"),
        "{err}"
    );

    let mut not_unet = sd.clone();
    not_unet
        .tensors
        .retain(|k, _| !k.starts_with("input_block"));
    let err = UNet::from_state_dict(&not_unet).unwrap_err();
    assert!(
        matches!(&err, ModelError::NotAUNet(m) if m.contains("not a challenge U-Net")),
        "{err}"
    );

    let mut five_heads = sd;
    five_heads
        .tensors
        .get_mut("floe_feature_map.feature_out.weight")
        .unwrap()
        .shape = vec![5, 16, 1, 1];
    let err = UNet::from_state_dict(&five_heads).unwrap_err().to_string();
    assert!(err.contains("FLOE head has 5 outputs"), "{err}");
}
