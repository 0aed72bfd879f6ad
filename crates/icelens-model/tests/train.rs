//! Training on burn's autodiff (natively: wgpu on Vulkan; in CI, Mesa's lavapipe, so every
//! network and batch here is tiny).

mod common;

use std::collections::BTreeSet;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{device, max_abs_diff, reference, synth_scene, train_two_steps};
use icelens_core::checkpoint::{load_state_dict, write_torch, StateDict};
use icelens_core::{npy, Chart};
use icelens_model::block_on;
use icelens_model::cpu::Feature;
use icelens_model::train::{chart_loss_sums, masked_cross_entropy, masked_mse};
use icelens_model::{
    prepare_patches, sample_patches, split_validation, Architecture, BurnUNet, Freeze, Kind,
    SicHead, TrainConfig, Trainer, UNet,
};

fn marinara_sd() -> StateDict {
    load_state_dict("pizza_marinara.pt", &reference("pizza_marinara.pt")).unwrap()
}

/// The top-left `size x size` corner of the reference input (it holds a no-data corner).
fn reference_crop(size: usize) -> Feature {
    let a = npy::read(&reference("input.npy")).unwrap();
    let (h, w) = (a.shape[2], a.shape[3]);
    let data = a.to_f32().unwrap();
    let mut out = Vec::with_capacity(24 * size * size);
    for c in 0..24 {
        for r in 0..size {
            let s = c * h * w + r * w;
            out.extend_from_slice(&data[s..s + size]);
        }
    }
    Feature {
        c: 24,
        h: size,
        w: size,
        data: out,
    }
}

/// A plain U-Net's architecture with a classification SIC head.
fn plain(filters: &[usize]) -> Architecture {
    Architecture::fresh(filters, SicHead::Classification, Kind::Plain).unwrap()
}

/// The eval-mode forward of a training network, read back as features.
fn eval_forward(net: &BurnUNet, x: &Feature) -> Vec<Vec<f32>> {
    let plain = device();
    let input = Tensor::<4>::from_data(TensorData::new(x.data.clone(), [1, x.c, x.h, x.w]), &plain);
    net.valid()
        .forward(input)
        .into_iter()
        .map(|t| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        })
        .collect()
}

fn cpu_forward(net: &UNet, x: &Feature) -> Vec<Vec<f32>> {
    let out = net.forward(x);
    Chart::ALL
        .iter()
        .map(|c| out.get(*c).data.clone())
        .collect()
}

fn assert_close(got: &[Vec<f32>], want: &[Vec<f32>], tol: f32, what: &str) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let d = max_abs_diff(g, w);
        assert!(d < tol, "{what}, head {k}: max abs diff {d}");
    }
}

#[test]
fn from_state_dict_matches_the_cpu_network_in_eval_mode() {
    let sd = marinara_sd();
    let net = BurnUNet::from_state_dict(&sd, &device()).unwrap();
    assert_eq!(net.arch(), UNet::from_state_dict(&sd).unwrap().arch);
    let x = reference_crop(64);
    let got = eval_forward(&net, &x);
    let want = cpu_forward(&UNet::from_state_dict(&sd).unwrap(), &x);
    assert_close(&got, &want, 1e-3, "marinara 64x64");
}

#[test]
fn state_dict_round_trips_and_training_updates_batchnorm() {
    let sd = marinara_sd();
    let net = BurnUNet::from_state_dict(&sd, &device()).unwrap();

    // Untrained: the same keys, shapes, values and integer buffers, in PyTorch's order.
    let back = block_on(net.to_state_dict()).unwrap();
    assert_eq!(
        back.tensors.keys().collect::<Vec<_>>(),
        sd.tensors.keys().collect::<Vec<_>>()
    );
    for (k, t) in &sd.tensors {
        assert_eq!(back.tensors[k], *t, "{k}");
    }
    let ints = |s: &StateDict| s.integer_buffers.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(ints(&back), ints(&sd));
    assert_eq!(back.integer_values, sd.integer_values);
    assert_eq!(back.keys_in_order(), sd.keys_in_order());
    assert_eq!(back.keys_in_order().len(), 114);

    // A few training steps on a generated scene.
    let trainer = train_two_steps(net);
    let trained = block_on(trainer.model().to_state_dict()).unwrap();
    let key = "input_block.double_conv.1.running_mean";
    let moved = max_abs_diff(&trained.tensors[key].data, &sd.tensors[key].data);
    assert!(moved > 1e-4, "running mean did not move ({moved})");
    let nbt = "bridge.double_conv.double_conv.4.num_batches_tracked";
    assert_eq!(trained.integer_values[nbt], sd.integer_values[nbt] + 2);
    let w = "expand_blocks.3.double_conv.double_conv.3.weight";
    assert!(max_abs_diff(&trained.tensors[w].data, &sd.tensors[w].data) > 0.0);

    // Written as a .pt, read back, run on the CPU: the same as the training network in eval.
    let pt = write_torch(&trained, None);
    let reloaded = load_state_dict("trained.pt", &pt).unwrap();
    assert_eq!(reloaded.tensors, trained.tensors);
    let cpu = UNet::from_state_dict(&reloaded).unwrap();
    let x = reference_crop(64);
    assert_close(
        &eval_forward(trainer.model(), &x),
        &cpu_forward(&cpu, &x),
        1e-3,
        "trained marinara",
    );
}

#[test]
fn a_small_network_learns_from_scratch() {
    let scene = synth_scene(200, 200, 3);
    let patches = sample_patches(&[&scene], 10, 64, 7).unwrap();
    assert_eq!(patches.len(), 10);
    let (train, val) = split_validation(patches, 0.2, 7);
    assert_eq!((train.len(), val.len()), (8, 2));
    let net = BurnUNet::new(&plain(&[4, 8]), 11, &device());
    let config = TrainConfig {
        lr: 1e-2,
        batch_size: 4,
        epochs: 3,
        steps_per_epoch: 10,
        patch_size: 64,
        patience: 0,
        seed: 3,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config, train, val).unwrap();
    let mut losses = Vec::new();
    let mut vals = Vec::new();
    trainer
        .run(|e| {
            match e {
                icelens_model::TrainEvent::Step(s) => losses.push(s.loss),
                icelens_model::TrainEvent::Validation(v) => vals.push(v.clone()),
            }
            true
        })
        .unwrap();
    assert_eq!(losses.len(), 30);
    assert_eq!(vals.len(), 3);
    assert!(trainer.finished());
    assert!(losses.iter().all(|l| l.is_finite()));
    let last: f32 = losses[25..].iter().sum::<f32>() / 5.0;
    assert!(
        last < 0.85 * losses[0],
        "loss did not go down: first {}, last five {last} ({losses:?})",
        losses[0]
    );
    assert!(vals[0].improved && !vals[0].on_training_loss && vals[0].loss.is_finite());
    let best = trainer.state().best_epoch.unwrap();
    assert_eq!(trainer.state().best_loss, Some(vals[best].loss), "{vals:?}");
    // The best weights export as a loadable checkpoint.
    let sd = block_on(trainer.best_model().to_state_dict()).unwrap();
    let unet = UNet::from_state_dict(&sd).unwrap();
    assert_eq!(unet.arch.filters, vec![4, 8]);
}

#[test]
fn cross_entropy_ignores_255_like_pytorch() {
    let dev = device();
    // [1, 3, 2, 2], channel-major: pixel p of class c at c * 4 + p.
    let pixels = [
        [1.0f32, 2.0, 0.5],
        [0.1, -1.0, 3.0],
        [2.0, 2.0, 2.0],
        [-0.5, 0.0, 0.5],
    ];
    let target = [0u8, 2, 255, 1];
    let mut data = vec![0f32; 12];
    for (p, l) in pixels.iter().enumerate() {
        for c in 0..3 {
            data[c * 4 + p] = l[c];
        }
    }
    let mut want = 0f64;
    for p in [0, 1, 3] {
        let l = pixels[p].map(f64::from);
        let lse = l.iter().map(|v| v.exp()).sum::<f64>().ln();
        want += lse - l[target[p] as usize];
    }
    want /= 3.0;
    let logits = Tensor::<4>::from_data(TensorData::new(data.clone(), [1, 3, 2, 2]), &dev);
    let got = masked_cross_entropy(logits.clone(), &target)
        .unwrap()
        .into_scalar::<f32>();
    assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
    assert!(masked_cross_entropy(logits, &[255; 4]).is_none());

    // Its gradient: (softmax - one-hot) / 3 on labelled pixels, 0 on the ignored one.
    let ad = dev.clone().autodiff();
    let logits = Tensor::<4>::from_data(TensorData::new(data, [1, 3, 2, 2]), &ad).require_grad();
    let grads = masked_cross_entropy(logits.clone(), &target)
        .unwrap()
        .backward();
    let g = logits
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    for (p, l) in pixels.iter().enumerate() {
        let z: f32 = l.iter().map(|v| v.exp()).sum();
        for c in 0..3 {
            let want = if target[p] == 255 {
                0.0
            } else {
                (l[c].exp() / z - (c == target[p] as usize) as u8 as f32) / 3.0
            };
            assert!((g[c * 4 + p] - want).abs() < 1e-5, "grad p{p} c{c}");
        }
    }

    // The regression loss: MSE on the class index over labelled pixels.
    let pred = Tensor::<4>::from_data(
        TensorData::new(vec![0.5f32, 3.0, 7.0, 10.0], [1, 1, 2, 2]),
        &dev,
    );
    let mse = masked_mse(pred, &[0, 255, 7, 9])
        .unwrap()
        .into_scalar::<f32>();
    assert!((mse - (0.25 + 0.0 + 1.0) / 3.0).abs() < 1e-6, "{mse}");
}

#[test]
fn transfer_from_a_smaller_checkpoint() {
    let sd = marinara_sd();
    let arch = Architecture::fresh(&[16, 32, 32, 32, 32, 32], SicHead::Regression, Kind::Plain);
    let (net, copied) = BurnUNet::from_smaller(&sd, &arch.unwrap(), 1, &device()).unwrap();
    assert_eq!(net.arch().head_outputs, [1, 7, 8]);
    // input block, contract 0-2, expand 2-5 (two convolutions each), SOD and FLOE heads.
    assert_eq!(copied.len(), 2 + 6 + 8 + 2, "{copied:?}");
    let out = block_on(net.to_state_dict()).unwrap();
    let same = |a: &str, b: &str| out.tensors[a].data == sd.tensors[b].data;
    assert!(same(
        "expand_blocks.5.double_conv.double_conv.0.weight",
        "expand_blocks.3.double_conv.double_conv.0.weight"
    ));
    assert!(same(
        "expand_blocks.2.double_conv.double_conv.3.weight",
        "expand_blocks.0.double_conv.double_conv.3.weight"
    ));
    assert!(same(
        "contract_blocks.2.double_conv.double_conv.3.weight",
        "contract_blocks.2.double_conv.double_conv.3.weight"
    ));
    // BatchNorm starts fresh; the new levels are initialised, not copied.
    assert!(out.tensors["input_block.double_conv.1.weight"]
        .data
        .iter()
        .all(|v| *v == 1.0));
    assert!(!copied.iter().any(|k| k.starts_with("contract_blocks.3")));
    assert_eq!(out.tensors.len(), 162 - 26);
    assert!(UNet::from_state_dict(&out).is_ok());
}

#[test]
fn a_frozen_encoder_stays_as_loaded() {
    let sd = marinara_sd();
    let net = BurnUNet::from_state_dict(&sd, &device()).unwrap();
    let scene = synth_scene(128, 128, 9);
    let patches = sample_patches(&[&scene], 2, 64, 2).unwrap();
    let config = TrainConfig {
        batch_size: 2,
        freeze: Freeze::Encoder,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config, patches, Vec::new()).unwrap();
    block_on(trainer.step()).unwrap();
    let out = block_on(trainer.model().to_state_dict()).unwrap();
    for k in [
        "input_block.double_conv.0.weight",
        "input_block.double_conv.1.running_mean",
        "contract_blocks.2.double_conv.double_conv.4.running_var",
    ] {
        assert_eq!(out.tensors[k], sd.tensors[k], "{k}");
    }
    let nbt = "input_block.double_conv.1.num_batches_tracked";
    assert_eq!(out.integer_values[nbt], sd.integer_values[nbt]);
    for k in [
        "bridge.double_conv.double_conv.0.weight",
        "bridge.double_conv.double_conv.1.running_mean",
        "expand_blocks.3.double_conv.double_conv.0.weight",
    ] {
        assert_ne!(out.tensors[k], sd.tensors[k], "{k}");
    }
}

#[test]
fn patches_are_seeded_and_labelled() {
    let scene = synth_scene(150, 130, 4);
    let a = sample_patches(&[&scene], 6, 48, 9).unwrap();
    let b = sample_patches(&[&scene], 6, 48, 9).unwrap();
    let c = sample_patches(&[&scene], 6, 48, 10).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    for p in &a {
        assert_eq!((p.height, p.width), (48, 48));
        assert_eq!(p.x.len(), 24 * 48 * 48);
        assert!(p.labelled_sic() > 1);
    }
    // A scene is one patch at its own size; a larger patch cannot be drawn.
    let square = synth_scene(96, 96, 4);
    let whole = sample_patches(&[&square], 1, 96, 0).unwrap();
    assert_eq!(whole[0].y[1], square.chart(Chart::SOD).unwrap());
    assert!(sample_patches(&[&scene], 1, 151, 0).is_err());

    // Several scenes: validation patches come from other scenes than training ones.
    let config = TrainConfig {
        patch_size: 48,
        val_fraction: 0.25,
        ..TrainConfig::default()
    };
    let (train, val) = prepare_patches(&[&scene, &square], 8, &config).unwrap();
    assert_eq!((train.len(), val.len()), (6, 2));
    let (train, val) = prepare_patches(&[&scene], 8, &config).unwrap();
    assert_eq!((train.len(), val.len()), (6, 2));
    assert!(val.iter().all(|v| !train.contains(v)));
}

/// The step time of the challenge's batch (8 x 256 x 256) for pizza_marinara; run with
/// `--ignored --nocapture`. Slow on a software GPU.
#[test]
#[ignore]
fn step_time_marinara_8x256() {
    step_time(&device());
}

/// The same on burn's CPU backend (flex, on every core natively); `bench/train.sh` runs it
/// against PyTorch.
#[test]
#[ignore]
fn step_time_marinara_8x256_cpu() {
    step_time(&Device::flex());
}

fn step_time(device: &Device) {
    let sd = marinara_sd();
    let net = BurnUNet::from_state_dict(&sd, device).unwrap();
    let scene = synth_scene(600, 600, 1);
    let patches = sample_patches(&[&scene], 8, 256, 1).unwrap();
    let config = TrainConfig::default();
    let mut trainer = Trainer::new(net, config, patches, Vec::new()).unwrap();
    for i in 0..3 {
        let t = std::time::Instant::now();
        let r = block_on(trainer.step()).unwrap();
        eprintln!(
            "step {i}: {:.2} s, loss {:.4} {:?}",
            t.elapsed().as_secs_f64(),
            r.loss,
            r.chart_losses
        );
    }
}

/// The training loss (train-mode BatchNorm) of a network given by a state_dict, and the
/// gradients of its parameters by PyTorch name.
fn loss_and_grads(
    sd: &StateDict,
    x: &[f32],
    y: &[Vec<u8>; 3],
    keys: &[&str],
) -> (f32, Vec<Vec<f32>>) {
    let net = BurnUNet::from_state_dict(sd, &device()).unwrap();
    let ad = device().autodiff();
    let n = y[0].len() / (32 * 32);
    let xt = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [n, 24, 32, 32]), &ad);
    let (sums, counts) = chart_loss_sums(net.forward(xt), y, SicHead::Classification);
    let mut total: Option<Tensor<1>> = None;
    for (s, c) in sums.into_iter().zip(counts) {
        let m = s.div_scalar(c as f64);
        total = Some(match total {
            Some(t) => t.add(m),
            None => m,
        });
    }
    let total = total.unwrap();
    let mut out = Vec::new();
    if !keys.is_empty() {
        let grads = burn::optim::GradientsParams::from_grads(total.backward(), &net);
        let read = |t: Tensor<1>| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        };
        for k in keys {
            let last = &net.expand_blocks[net.expand_blocks.len() - 1];
            let g = match *k {
                "input_block.double_conv.0.weight" => {
                    let t = grads.get::<4>(net.input_block.first.conv.id).unwrap();
                    let n = t.shape().num_elements();
                    t.reshape([n])
                }
                "input_block.double_conv.1.weight" => {
                    grads.get::<1>(net.input_block.first.bn.weight.id).unwrap()
                }
                "bridge.double_conv.double_conv.4.bias" => {
                    grads.get::<1>(net.bridge.second.bn.bias.id).unwrap()
                }
                "expand_blocks.1.double_conv.double_conv.4.weight" => grads
                    .get::<1>(last.double_conv.second.bn.weight.id)
                    .unwrap(),
                "sod_feature_map.feature_out.bias" => {
                    grads.get::<1>(net.sod_feature_map.bias.id).unwrap()
                }
                _ => unreachable!(),
            };
            out.push(read(g));
        }
    }
    (total.into_scalar::<f32>(), out)
}

/// Autodiff through the whole network (heads, the select-based upsampling, train-mode
/// BatchNorm, pooling) agrees with central finite differences.
#[test]
fn gradients_match_finite_differences() {
    let scene = synth_scene(64, 64, 8);
    let patches = sample_patches(&[&scene], 2, 32, 3).unwrap();
    let mut x = Vec::new();
    let mut y: [Vec<u8>; 3] = Default::default();
    for p in &patches {
        x.extend_from_slice(&p.x);
        for (dst, src) in y.iter_mut().zip(&p.y) {
            dst.extend_from_slice(src);
        }
    }
    // Every chart needs a labelled pixel for its mean.
    for c in &mut y {
        c[0] = 0;
    }
    let net = BurnUNet::new(&plain(&[4, 8]), 5, &device());
    let sd = block_on(net.to_state_dict()).unwrap();
    let keys = [
        "sod_feature_map.feature_out.bias",
        "expand_blocks.1.double_conv.double_conv.4.weight",
        "bridge.double_conv.double_conv.4.bias",
        "input_block.double_conv.1.weight",
        "input_block.double_conv.0.weight",
    ];
    let (_, grads) = loss_and_grads(&sd, &x, &y, &keys);
    let eps = 1e-3f32;
    for (key, g) in keys.iter().zip(&grads) {
        // A pseudo-random direction; three single weights of the first convolution (along
        // all 864 at once the loss curves too much for a float32 finite difference).
        let dir: Vec<f32> = (0..g.len())
            .map(|i| match *key {
                "input_block.double_conv.0.weight" => [7, 300, 801].contains(&i) as u8 as f32,
                _ => ((i * 7919 % 13) as f32 - 6.0) / 6.0,
            })
            .collect();
        let analytic: f64 = g.iter().zip(&dir).map(|(a, b)| (*a * *b) as f64).sum();
        let shifted = |sign: f32| {
            let mut s = sd.clone();
            for (w, d) in s.tensors.get_mut(*key).unwrap().data.iter_mut().zip(&dir) {
                *w += sign * eps * d;
            }
            loss_and_grads(&s, &x, &y, &[]).0 as f64
        };
        let numeric = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps as f64);
        assert!(
            (analytic - numeric).abs() <= 0.03 * analytic.abs() + 2e-4,
            "{key}: autodiff {analytic}, finite difference {numeric}"
        );
    }
}

/// The validation scores are the challenge's metrics of what the network predicts for the
/// validation patches, as the exported network predicts them on the CPU; the baseline is
/// the validation of the model before any step.
#[test]
fn validation_scores_match_the_exported_network() {
    let scene = synth_scene(160, 160, 8);
    let patches = sample_patches(&[&scene], 6, 48, 2).unwrap();
    let (train, val) = split_validation(patches, 0.5, 2);
    let net = BurnUNet::new(&plain(&[4, 8]), 5, &device());
    let config = TrainConfig {
        batch_size: 2,
        epochs: 2,
        steps_per_epoch: 1,
        patch_size: 48,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, config, train, val.clone()).unwrap();
    let before = block_on(trainer.baseline()).unwrap().unwrap();
    let first = block_on(trainer.validate()).unwrap();
    assert_eq!(Some(before.loss), Some(first.loss));
    assert_eq!(Some(before.scores), first.scores);

    block_on(trainer.step()).unwrap();
    let v = block_on(trainer.validate()).unwrap();
    let scores = v.scores.expect("validation patches give scores");
    let unet = UNet::from_state_dict(&block_on(trainer.model().to_state_dict()).unwrap()).unwrap();
    let mut conf: [icelens_core::metrics::Confusion; 3] = Default::default();
    for p in &val {
        let x = Feature {
            c: 24,
            h: p.height,
            w: p.width,
            data: p.x.clone(),
        };
        let out = cpu_forward(&unet, &x);
        let n = p.height * p.width;
        for (c, o) in out.iter().enumerate() {
            let classes = o.len() / n;
            let pred: Vec<u8> = (0..n)
                .map(|i| {
                    (0..classes)
                        .fold((0, f32::NEG_INFINITY), |(b, bv), k| {
                            let v = o[k * n + i];
                            if v > bv {
                                (k, v)
                            } else {
                                (b, bv)
                            }
                        })
                        .0 as u8
                })
                .collect();
            conf[c].add_maps(&p.y[c], &pred);
        }
    }
    let want = icelens_core::metrics::Scores::from_confusions(&conf);
    // The GPU and CPU networks agree to ~1e-5, so at most a handful of near-tied pixels may
    // flip class; the scores must agree to well under a point.
    for (g, w) in [
        (scores.SIC, want.SIC),
        (scores.SOD, want.SOD),
        (scores.FLOE, want.FLOE),
    ] {
        assert!((g - w).abs() < 0.5, "validation {scores:?} vs CPU {want:?}");
    }
    assert!(scores.combined.is_finite());
}

/// Sums over two backends' updates of the same weights (`a` and `b`, each `after - before`):
/// enough to compare the updates relative to their size, as a whole or tensor by tensor.
#[derive(Debug, Default, Clone, Copy)]
struct UpdateSums {
    aa: f64,
    bb: f64,
    ab: f64,
    n: usize,
}

impl UpdateSums {
    fn add(&mut self, before: &[f32], a: &[f32], b: &[f32]) {
        assert!(before.len() == a.len() && a.len() == b.len());
        for ((w, x), y) in before.iter().zip(a).zip(b) {
            let (ua, ub) = ((x - w) as f64, (y - w) as f64);
            self.aa += ua * ua;
            self.bb += ub * ub;
            self.ab += ua * ub;
        }
        self.n += before.len();
    }

    /// How far `b` moved along `a`'s update, relative to `a`'s: 1 when it took the same step,
    /// 1.1 when it went 10 % further, -1 when it went the other way. NaN when either is NaN.
    fn slope(&self) -> f64 {
        self.ab / self.aa
    }

    /// The cosine of the angle between the two updates: 1 when they point the same way.
    fn cosine(&self) -> f64 {
        self.ab / (self.aa * self.bb).sqrt()
    }

    /// The size of the difference of the updates relative to the larger one.
    fn relative_difference(&self) -> f64 {
        ((self.aa + self.bb - 2.0 * self.ab).max(0.0) / self.aa.max(self.bb)).sqrt()
    }

    /// Root mean square of `a`'s update per weight.
    fn rms(&self) -> f64 {
        (self.aa / self.n.max(1) as f64).sqrt()
    }
}

/// burn's CPU backend (flex, what the page trains on without WebGPU) takes the same step as
/// the GPU one: same start, same batch, same losses, and the same weight updates within float
/// error (two Adam steps move a weight by about 2 x lr, so the updates themselves are
/// compared, relative to their size, not the weights).
#[test]
fn the_cpu_backend_trains_like_the_gpu_one() {
    let scene = synth_scene(120, 120, 12);
    let patches = sample_patches(&[&scene], 4, 48, 3).unwrap();
    let (train, val) = split_validation(patches, 0.25, 3);
    let config = TrainConfig {
        lr: 1e-3,
        batch_size: 3,
        epochs: 1,
        steps_per_epoch: 2,
        patch_size: 48,
        ..TrainConfig::default()
    };
    let run = |device: &Device| {
        let net = BurnUNet::new(&plain(&[4, 8]), 21, device);
        let start = block_on(net.to_state_dict()).unwrap();
        let mut t = Trainer::new(net, config.clone(), train.clone(), val.clone()).unwrap();
        let before = block_on(t.baseline()).unwrap().unwrap();
        let steps = [block_on(t.step()).unwrap(), block_on(t.step()).unwrap()];
        let v = block_on(t.validate()).unwrap();
        (
            start,
            before,
            steps,
            v,
            block_on(t.model().to_state_dict()).unwrap(),
        )
    };
    let (start_gpu, b_gpu, s_gpu, v_gpu, sd_gpu) = run(&device());
    let (start_cpu, b_cpu, s_cpu, v_cpu, sd_cpu) = run(&Device::flex());
    let close = |a: f32, b: f32, what: &str| {
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1.0),
            "{what}: {a} vs {b}"
        );
    };
    close(b_gpu.loss, b_cpu.loss, "loss before");
    for (g, c) in s_gpu.iter().zip(&s_cpu) {
        close(g.loss, c.loss, "step loss");
    }
    close(v_gpu.loss, v_cpu.loss, "validation loss");
    assert_eq!(
        start_gpu, start_cpu,
        "both backends start from the same weights"
    );
    assert_eq!(sd_gpu.keys_in_order(), sd_cpu.keys_in_order());
    assert_eq!(sd_gpu.integer_values, sd_cpu.integer_values);
    // Adam moves a trained weight by about the learning rate per step whatever its gradient's
    // size, so comparing weights (|w| ~ 0.1) hides a wrong step. Compare the updates
    // (after - before) instead. Where a gradient is within float error of zero, or the two steps'
    // gradients nearly cancel, Adam's update is sensitive to the last bits of the gradient, so
    // single weights can differ a lot between backends (in the first convolution a third of
    // them by more than 5 %) while the step as a whole agrees: hence the slope of one update
    // along the other (a backend that steps 10 % too far has slope 1.1) and their cosine, over
    // all trained weights and per tensor. BatchNorm's running statistics do not go through
    // Adam and must agree closely.
    let mut trained = UpdateSums::default();
    let mut wrong = vec![];
    for (k, t) in &sd_gpu.tensors {
        let mut u = UpdateSums::default();
        u.add(&start_gpu.tensors[k].data, &t.data, &sd_cpu.tensors[k].data);
        eprintln!(
            "{k}: {} weights, update rms {:.3e}, slope {:.4}, cosine {:.4}, relative difference {:.3e}",
            u.n,
            u.rms(),
            u.slope(),
            u.cosine(),
            u.relative_difference()
        );
        let running = k.ends_with(".running_mean") || k.ends_with(".running_var");
        let ok = if running {
            u.relative_difference() <= 1e-2
        } else if k.contains("feature_out") {
            // The output layers' gradients are far from zero: their updates agree closely.
            trained.add(&start_gpu.tensors[k].data, &t.data, &sd_cpu.tensors[k].data);
            u.relative_difference() <= 1e-2
        } else {
            trained.add(&start_gpu.tensors[k].data, &t.data, &sd_cpu.tensors[k].data);
            (u.slope() - 1.0).abs() <= PER_TENSOR_SLOPE && u.cosine() >= PER_TENSOR_COSINE
        };
        if !ok {
            wrong.push(k.clone());
        }
    }
    eprintln!(
        "all {} trained weights: update rms {:.3e}, slope {:.5}, cosine {:.5}, relative difference {:.3e}",
        trained.n,
        trained.rms(),
        trained.slope(),
        trained.cosine(),
        trained.relative_difference()
    );
    assert!(
        wrong.is_empty(),
        "the backends update these tensors differently (see above): {wrong:?}"
    );
    // The steps are real (about lr per weight and step, two steps)...
    assert!(
        trained.rms() > config.lr,
        "the weights hardly moved: rms update {}",
        trained.rms()
    );
    // ...and the same.
    assert!(
        (trained.slope() - 1.0).abs() <= SLOPE && trained.cosine() >= COSINE,
        "the CPU backend's step is {:.4} times the GPU's along it, cosine {:.5}",
        trained.slope(),
        trained.cosine()
    );
}

/// Tolerances of the CPU-vs-GPU step comparison, over all trained weights and per tensor.
/// Measured on lavapipe against flex: slope 0.998 and cosine 0.998 over all; per tensor,
/// slopes 0.91-1.04 and cosines from 0.975 (8-weight BatchNorm biases); the output layers
/// within 2e-3, running statistics within 5e-4. With the CPU's learning rate 10 % higher the
/// overall slope is 1.077 and the output layers differ by 0.09.
const SLOPE: f64 = 0.02;
const COSINE: f64 = 0.99;
const PER_TENSOR_SLOPE: f64 = 0.2;
const PER_TENSOR_COSINE: f64 = 0.95;
