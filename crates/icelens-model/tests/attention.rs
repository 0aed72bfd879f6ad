//! The team's attention U-Net (spec §d.7) against PyTorch's own outputs of the fork's class
//! (shared/reference/attention), on the exact CPU path and on wgpu; and checkpoints used
//! whole or refused.

mod common;

use std::collections::BTreeMap;

use common::{device, max_abs_diff, reference, shared, train_two_steps};
use icelens_core::checkpoint::{load_state_dict, StateDict, Tensor, WeightsFormat};
use icelens_core::metrics::{confusions, Confusion, Scores};
use icelens_core::{npy, read_scene, Chart, ReadLimits};
use icelens_model::block_on;
use icelens_model::cpu::Feature;
use icelens_model::gpu::GpuUNet;
use icelens_model::{
    infer_scene, Architecture, BurnUNet, InferOptions, Kind, ModelError, SicHead, UNet,
};

fn attention_file(name: &str) -> Vec<u8> {
    reference(&format!("attention/{name}"))
}

fn checkpoint() -> StateDict {
    load_state_dict(
        "unet_attention_4lvl.pt",
        &attention_file("unet_attention_4lvl.pt"),
    )
    .unwrap()
}

fn npy_f32(name: &str) -> (Vec<usize>, Vec<f32>) {
    let a = npy::read(&attention_file(name)).unwrap();
    (a.shape.clone(), a.to_f32().unwrap())
}

fn input(prefix: &str) -> Feature {
    let (s, data) = npy_f32(&format!("{prefix}input.npy"));
    Feature {
        c: s[1],
        h: s[2],
        w: s[3],
        data,
    }
}

#[test]
fn the_architecture_and_every_tensor_are_read() {
    let sd = checkpoint();
    assert_eq!(sd.tensors.len() + sd.integer_buffers.len(), 186);
    let net = UNet::from_state_dict(&sd).unwrap();
    assert_eq!(net.arch.kind, Kind::Attention);
    assert_eq!(net.arch.filters, vec![16, 32, 32, 32]);
    assert_eq!(net.arch.head_outputs, [12, 7, 8]);
    assert_eq!(net.arch.parameter_count(), 200_363);
    let expected: Vec<String> = net.arch.expected().into_iter().map(|(n, _)| n).collect();
    let mut file: Vec<&String> = sd.tensors.keys().collect();
    file.sort();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(file, want, "every float tensor is one the network uses");
}

/// Logits and psi within 1e-3 of PyTorch; argmax equal where PyTorch's margin exceeds 1e-3.
fn check(prefix: &str, out: &icelens_model::Outputs, psis: &[Feature]) {
    for chart in Chart::ALL {
        let (rshape, want) = npy_f32(&format!("{prefix}out_{}.npy", chart.name()));
        let got = out.get(chart);
        assert_eq!(vec![1, got.c, got.h, got.w], rshape, "{prefix}{chart}");
        let max = max_abs_diff(&got.data, &want);
        assert!(max <= 1e-3, "{prefix}{chart}: max abs diff {max}");
        let plane = got.h * got.w;
        let mut compared = 0;
        for p in 0..plane {
            let pick = |v: &[f32]| {
                (0..got.c)
                    .max_by(|a, b| v[a * plane + p].total_cmp(&v[b * plane + p]).then(b.cmp(a)))
                    .unwrap()
            };
            let top = pick(&want);
            let t1 = want[top * plane + p];
            let t2 = (0..got.c)
                .filter(|c| *c != top)
                .map(|c| want[c * plane + p])
                .fold(f32::NEG_INFINITY, f32::max);
            if t1 - t2 > 1e-3 {
                assert_eq!(pick(&got.data), top, "{prefix}{chart} pixel {p}");
                compared += 1;
            }
        }
        assert!(compared > plane * 9 / 10, "{prefix}{chart}: {compared}");
    }
    assert_eq!(psis.len(), 4, "one psi per expanding block");
    for (k, psi) in psis.iter().enumerate() {
        let (rshape, want) = npy_f32(&format!("{prefix}psi_{k}.npy"));
        assert_eq!(vec![1, psi.c, psi.h, psi.w], rshape, "{prefix}psi_{k}");
        let max = max_abs_diff(&psi.data, &want);
        assert!(max <= 1e-3, "{prefix}psi_{k}: max abs diff {max}");
        // The gates really gate: psi is not a constant map.
        let lo = want.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = want.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert!(hi - lo > 0.05, "{prefix}psi_{k} spans {lo}..{hi}");
    }
}

#[test]
fn cpu_logits_and_attention_match_pytorch_on_both_sizes() {
    let net = UNet::from_state_dict(&checkpoint()).unwrap();
    for prefix in ["", "odd_"] {
        let (out, psis) = net.forward_with_attention(&input(prefix));
        check(prefix, &out, &psis);
    }
}

#[test]
fn wgpu_logits_and_attention_match_pytorch_on_both_sizes() {
    let gpu = GpuUNet::new(&checkpoint(), &device()).unwrap();
    for prefix in ["", "odd_"] {
        let (out, psis) = block_on(gpu.forward_with_attention(&input(prefix))).unwrap();
        check(prefix, &out, &psis);
    }
}

#[test]
fn whole_scene_predictions_and_pooled_scores_match_the_reference() {
    let net = UNet::from_state_dict(&checkpoint()).unwrap();
    let reference: serde_json::Value =
        serde_json::from_slice(&attention_file("scene_reference.json")).unwrap();
    let mut pooled: [Confusion; 3] = Default::default();
    for name in [
        "20190412T103015_dmi_prep.nc",
        "20200117T211533_cis_prep.nc",
        "20211130T083012_dmi_prep.nc",
    ] {
        let bytes = std::fs::read(shared().join("fixtures").join(name)).unwrap();
        let scene = read_scene(name, bytes, &ReadLimits::default()).unwrap();
        let pred = infer_scene(&net, &scene, &InferOptions::default(), &mut |_, _| true).unwrap();
        let npz = attention_file(&format!("scene_{}.npz", &name[..19]));
        for chart in Chart::ALL {
            let want = npy::read_npz_member(&npz, &format!("pred_{}", chart.name()))
                .unwrap()
                .to_u8()
                .unwrap();
            let margin = npy::read_npz_member(&npz, &format!("margin_{}", chart.name()))
                .unwrap()
                .to_f32()
                .unwrap();
            let got = pred.chart(chart);
            let wrong = (0..want.len())
                .filter(|i| margin[*i] > 1e-3 && got[*i] != want[*i])
                .count();
            assert_eq!(wrong, 0, "{name} {chart}");
        }
        let Some(charts) = &scene.charts else {
            continue;
        };
        let maps = [
            pred.chart(Chart::SIC),
            pred.chart(Chart::SOD),
            pred.chart(Chart::FLOE),
        ];
        let conf = confusions(charts, maps);
        let want = &reference["scenes"][name]["scores_this_scene"];
        let got = Scores::from_confusions(&conf);
        for chart in Chart::ALL {
            assert_eq!(
                got.get(chart),
                want[chart.name()].as_f64().unwrap(),
                "{name}"
            );
        }
        for (p, c) in pooled.iter_mut().zip(&conf) {
            p.merge(c);
        }
    }
    let got = Scores::from_confusions(&pooled);
    let want = &reference["scores_all_labelled_scenes_pooled"];
    for chart in Chart::ALL {
        assert_eq!(got.get(chart), want[chart.name()].as_f64().unwrap());
    }
    assert_eq!(got.combined, want["combined"].as_f64().unwrap());
}

/// A state_dict with every tensor of `arch`, seeded values.
fn synthetic(arch: &Architecture) -> StateDict {
    let mut tensors = BTreeMap::new();
    let mut seed = 3u32;
    for (name, shape) in arch.expected() {
        let n: usize = shape.iter().product();
        // He-scaled convolutions and BatchNorm scales near 1, so that the signal neither
        // vanishes nor explodes through the levels and the outputs depend on the input.
        let fan_in: usize = shape.iter().skip(1).product();
        let bound = (6.0 / fan_in.max(1) as f32).sqrt();
        let gamma = name.ends_with(".1.weight") || name.ends_with(".4.weight");
        let data = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (seed >> 8) as f32 / (1 << 24) as f32;
                if name.ends_with("running_var") {
                    0.5 + u
                } else if gamma {
                    0.8 + 0.4 * u
                } else if shape.len() == 4 {
                    (2.0 * u - 1.0) * bound
                } else {
                    (u - 0.5) * 0.2
                }
            })
            .collect();
        tensors.insert(name, Tensor { shape, data });
    }
    StateDict {
        tensors,
        integer_buffers: arch
            .batch_norms()
            .into_iter()
            .map(|b| format!("{b}.num_batches_tracked"))
            .collect(),
        integer_values: BTreeMap::new(),
        epoch: None,
        format: WeightsFormat::Safetensors,
        order: vec![],
        metadata: BTreeMap::new(),
    }
}

#[test]
fn another_depth_and_filter_list_runs_alike_on_cpu_and_wgpu() {
    // Three levels, uneven filters (odd gate widths: int(out / 2)), a regression SIC head.
    let arch = Architecture {
        filters: vec![6, 10, 14],
        in_channels: 24,
        head_outputs: [1, 7, 8],
        sic: SicHead::Regression,
        kind: Kind::Attention,
    };
    let sd = synthetic(&arch);
    let net = UNet::from_state_dict(&sd).unwrap();
    assert_eq!(net.arch, arch);
    let gates: Vec<usize> = arch.expand_shapes().iter().map(|e| e.gate).collect();
    assert_eq!(gates, vec![7, 5, 3]);
    let x = Feature {
        c: 24,
        h: 37,
        w: 29,
        data: (0..24 * 37 * 29)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect(),
    };
    let (cpu, cpu_psi) = net.forward_with_attention(&x);
    let gpu_net = GpuUNet::new(&sd, &device()).unwrap();
    let (gpu, gpu_psi) = block_on(gpu_net.forward_with_attention(&x)).unwrap();
    assert_eq!(cpu.sic.c, 1);
    for chart in Chart::ALL {
        let d = max_abs_diff(&cpu.get(chart).data, &gpu.get(chart).data);
        assert!(d <= 1e-3, "{chart}: {d}");
    }
    assert_eq!(cpu_psi.len(), 3);
    let sizes: Vec<(usize, usize)> = cpu_psi.iter().map(|p| (p.h, p.w)).collect();
    assert_eq!(sizes, vec![(9, 7), (18, 14), (37, 29)]);
    for (a, b) in cpu_psi.iter().zip(&gpu_psi) {
        assert!(max_abs_diff(&a.data, &b.data) <= 1e-4);
        assert!(a.data.iter().all(|p| *p > 0.0 && *p < 1.0));
    }
    // The gates change the answer: the same weights as a plain U-Net would differ.
    let mut plain = sd.clone();
    plain.tensors.retain(|k, _| !k.contains(".attention."));
    plain.integer_buffers.retain(|k| !k.contains(".attention."));
    let plain_net = UNet::from_state_dict(&plain).unwrap();
    assert_eq!(plain_net.arch.kind, Kind::Plain);
    let other = plain_net.forward(&x);
    assert!(max_abs_diff(&other.sod.data, &cpu.sod.data) > 1e-2);
}

#[test]
fn a_checkpoint_is_used_whole_or_refused() {
    // The attention checkpoint without its gates' first key is refused, naming the key.
    let mut sd = checkpoint();
    sd.tensors
        .remove("expand_blocks.2.attention.W_x.0.weight")
        .unwrap();
    let e = UNet::from_state_dict(&sd).unwrap_err();
    match &e {
        ModelError::DoesNotFit {
            network, problems, ..
        } => {
            assert_eq!(network, "attention U-Net");
            assert_eq!(
                problems,
                &["`expand_blocks.2.attention.W_x.0.weight` is missing".to_string()]
            );
        }
        other => panic!("{other:?}"),
    }
    let e = e.to_string();
    assert!(
        e.starts_with("does not fit an attention U-Net with filters [16, 32, 32, 32]:"),
        "{e}"
    );
    // A plain checkpoint with a tensor it would ignore is refused, naming it.
    let marinara = load_state_dict("pizza_marinara.pt", &reference("pizza_marinara.pt")).unwrap();
    let mut extra = marinara.clone();
    extra.tensors.insert(
        "expand_blocks.1.extra.weight".into(),
        Tensor {
            shape: vec![2],
            data: vec![0.0, 1.0],
        },
    );
    let e = UNet::from_state_dict(&extra).unwrap_err().to_string();
    assert!(
        e.contains("1 tensor is not used") && e.contains("`expand_blocks.1.extra.weight`"),
        "{e}"
    );
    // An integer buffer of no BatchNorm is refused too.
    let mut stray = marinara.clone();
    stray.integer_buffers.push("bridge.counter".into());
    let e = UNet::from_state_dict(&stray).unwrap_err().to_string();
    assert!(e.contains("`bridge.counter`"), "{e}");
    // A gate of the wrong width: named with both shapes.
    let mut wide = checkpoint();
    wide.tensors
        .get_mut("expand_blocks.0.attention.psi.0.weight")
        .unwrap()
        .shape = vec![1, 8, 3, 3];
    let e = UNet::from_state_dict(&wide).unwrap_err().to_string();
    assert!(
        e.contains("`expand_blocks.0.attention.psi.0.weight` has shape [1, 8, 3, 3], expected [1, 16, 3, 3]"),
        "{e}"
    );
    // The unchanged files load.
    assert!(UNet::from_state_dict(&marinara).is_ok());
    assert!(UNet::from_state_dict(&checkpoint()).is_ok());
}

#[test]
fn the_attention_unet_trains_and_then_agrees_with_the_cpu_network() {
    let sd = checkpoint();
    let net = BurnUNet::from_state_dict(&sd, &device()).unwrap();
    assert_eq!(net.arch().kind, Kind::Attention);
    // Untrained, the export is the checkpoint: UNetAttention's keys and order, every value.
    let back = block_on(net.to_state_dict()).unwrap();
    assert_eq!(back.keys_in_order(), sd.keys_in_order());
    assert_eq!(back.keys_in_order().len(), 186);
    assert_eq!(back.tensors, sd.tensors);
    assert_eq!(back.integer_values, sd.integer_values);

    let trained = block_on(train_two_steps(net).model().to_state_dict()).unwrap();
    // Gradients reach every gate, and their BatchNorms count the batches.
    for k in 0..4 {
        for part in ["W_gate", "W_x", "psi"] {
            let w = format!("expand_blocks.{k}.attention.{part}.0.weight");
            let moved = max_abs_diff(&trained.tensors[&w].data, &sd.tensors[&w].data);
            assert!(moved > 0.0, "{w} did not train");
            let n = format!("expand_blocks.{k}.attention.{part}.1.num_batches_tracked");
            assert_eq!(trained.integer_values[&n], sd.integer_values[&n] + 2, "{n}");
        }
    }
    // The trained weights give the same logits and attention on burn (eval mode) as on the
    // exact CPU network.
    let x = input("odd_");
    let (cpu, cpu_psi) = UNet::from_state_dict(&trained)
        .unwrap()
        .forward_with_attention(&x);
    let gpu_net = GpuUNet::new(&trained, &device()).unwrap();
    let (gpu, gpu_psi) = block_on(gpu_net.forward_with_attention(&x)).unwrap();
    for chart in Chart::ALL {
        let d = max_abs_diff(&cpu.get(chart).data, &gpu.get(chart).data);
        assert!(d <= 1e-3, "{chart}: {d}");
    }
    assert_eq!(cpu_psi.len(), 4);
    for (a, b) in cpu_psi.iter().zip(&gpu_psi) {
        assert!(max_abs_diff(&a.data, &b.data) <= 1e-3);
    }
}

#[test]
fn a_plain_unet_grows_into_an_attention_unet_with_fresh_gates() {
    let plain = load_state_dict("pizza_marinara.pt", &reference("pizza_marinara.pt")).unwrap();
    let arch =
        Architecture::fresh(&[16, 32, 32, 32], SicHead::Classification, Kind::Attention).unwrap();
    let (net, copied) = BurnUNet::from_smaller(&plain, &arch, 3, &device()).unwrap();
    assert_eq!(copied.len(), 19, "{copied:?}");
    assert!(copied.iter().all(|k| !k.contains(".attention.")));
    let grown = block_on(net.to_state_dict()).unwrap();
    assert_eq!(grown.keys_in_order(), checkpoint().keys_in_order());
    for k in &copied {
        assert_eq!(grown.tensors[k], plain.tensors[k], "{k}");
    }
    // Fresh gates: PyTorch's default initialisation, BatchNorm at identity.
    let w = &grown.tensors["expand_blocks.1.attention.W_x.0.weight"];
    assert_eq!(w.shape, vec![16, 32, 3, 3]);
    let bound = 1.0 / (32.0f32 * 9.0).sqrt();
    assert!(w.data.iter().all(|v| v.abs() <= bound) && w.data.iter().any(|v| *v != 0.0));
    assert!(grown.tensors["expand_blocks.1.attention.psi.1.weight"]
        .data
        .iter()
        .all(|v| *v == 1.0));
    assert_eq!(
        UNet::from_state_dict(&grown).unwrap().arch.kind,
        Kind::Attention
    );
}
