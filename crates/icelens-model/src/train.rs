//! Training and fine-tuning the challenge U-Net on burn's autodiff (spec §b.4, §d, §d.5).
//!
//! [`TrainUNet`] is the network of spec §d.2 as a burn [`Module`], with the same blocks, the
//! same tensors and BatchNorm in PyTorch's training semantics (batch statistics, biased
//! variance for normalising, unbiased variance for the running estimate, momentum 0.1), so a
//! model trained here exports a state_dict ([`TrainUNet::to_state_dict`]) with exactly
//! PyTorch's keys and shapes, which [`UNet::from_state_dict`](crate::UNet::from_state_dict)
//! and PyTorch both load.
//!
//! [`Trainer`] runs the challenge's recipe (Adam, lr 1e-4, betas 0.9/0.999, eps 1e-8,
//! cross-entropy per chart ignoring 255, summed) one step per call, so that a browser page can
//! yield between steps, show progress, pause and cancel; natively [`Trainer::run`] loops.
//!
//! The autodiff device is the model's device with autodiff enabled: in burn 0.22
//! `burn::tensor::Device::autodiff(self)` wraps any device (`DispatchDevice::Autodiff`); tensors
//! created on it take part in the graph, and [`Module::valid`] gives a copy on the plain
//! device for evaluation.
//!
//! The ×2 bilinear upsampling (align_corners) of the expanding blocks is two `select`s and
//! broadcast products per axis: burn 0.22's cubecl backends (wgpu, WebGPU) have no backward
//! pass for bilinear `interpolate` ("Bilinear interpolation backward is not supported by JIT
//! backend"). Its weights are computed like [`crate::cpu`]'s, so eval outputs match the CPU
//! network.
//!
//! Differences from the challenge's training, on purpose:
//! - float32 throughout (the starter kit trains under `torch.cuda.amp.autocast`);
//! - patches are pre-sampled ([`sample_patches`]) and batches drawn from them without
//!   replacement, where the starter kit draws a fresh random crop for every item;
//! - the 2 km channels of a patch are those of the inference-time input
//!   ([`Scene::input_window`]), not the training loader's 11-cell crop stretched to 256 px
//!   (spec §b.4's quirk, which misregisters AMSR2/ERA5 by up to one cell): the model is trained
//!   on exactly what icelens later runs it on.

use std::collections::BTreeMap;

use burn::module::{Flag, Module, Param, RunningState};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::{batch_norm, batch_norm_train, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Int, Tensor, TensorData};

use icelens_core::chart::CHART_FILL;
use icelens_core::checkpoint::{StateDict, Tensor as SdTensor, WeightsFormat};
use icelens_core::input::{Window, N_INPUT};
use icelens_core::metrics::{Confusion, Scores};
use icelens_core::{Chart, Scene};

use crate::arch::{head_prefix, Architecture, Kind, SicHead};

/// BatchNorm2d's defaults in the challenge's network.
pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// A small seeded generator (SplitMix64): deterministic across platforms, no dependency.

#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-high (bias below 2^-64 · n).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, bound: f64) -> f32 {
        ((2.0 * self.unit() - 1.0) * bound) as f32
    }

    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The network.

/// `BatchNorm2d(n)` with PyTorch's semantics: in training, normalise with the batch mean and
/// biased variance and update the running estimates with momentum 0.1 from the batch mean and
/// the **unbiased** variance (burn's own `BatchNorm` uses the biased one); otherwise normalise
/// with the running estimates.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    /// Training behaviour; [`Module::valid`] and [`Module::freeze`] turn it off.
    pub training: Param<Flag>,
    /// PyTorch's `num_batches_tracked` (an int64 buffer; only exported).
    pub num_batches_tracked: i64,
}

impl BatchNorm2d {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        if device.is_autodiff() && self.training.is_enabled() {
            let [b, _, h, w] = x.dims();
            let n = b * h * w;
            let out = batch_norm_train(x, self.weight.val(), self.bias.val(), BN_EPS);
            let unbiased = out.variance.mul_scalar(n as f64 / (n.max(2) - 1) as f64);
            let m = BN_MOMENTUM;
            let mean = self
                .running_mean
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - m)
                .add(out.mean.mul_scalar(m));
            let var = self
                .running_var
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - m)
                .add(unbiased.mul_scalar(m));
            self.running_mean.update(mean.detach());
            self.running_var.update(var.detach());
            out.output
        } else {
            batch_norm(
                x,
                self.weight.val(),
                self.bias.val(),
                self.running_mean.value_sync().to_device(&device),
                self.running_var.value_sync().to_device(&device),
                BN_EPS,
            )
        }
    }

    fn snapshot(&self) -> Self {
        Self {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            running_mean: RunningState::new(self.running_mean.value_sync()),
            running_var: RunningState::new(self.running_var.value_sync()),
            training: self.training.clone(),
            num_batches_tracked: self.num_batches_tracked,
        }
    }
}

/// `DoubleConv`: [0] Conv3x3 (no bias), [1] BatchNorm, ReLU, [3] Conv3x3, [4] BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct DoubleConv {
    pub conv0: Param<Tensor<4>>,
    pub bn1: BatchNorm2d,
    pub conv3: Param<Tensor<4>>,
    pub bn4: BatchNorm2d,
}

fn conv3x3(x: Tensor<4>, w: &Param<Tensor<4>>) -> Tensor<4> {
    conv2d(
        x,
        w.val(),
        None,
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    )
}

impl DoubleConv {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn1.forward(conv3x3(x, &self.conv0)));
        relu(self.bn4.forward(conv3x3(x, &self.conv3)))
    }

    fn snapshot(&self) -> Self {
        Self {
            conv0: self.conv0.clone(),
            bn1: self.bn1.snapshot(),
            conv3: self.conv3.clone(),
            bn4: self.bn4.snapshot(),
        }
    }

    fn count_batch(&mut self) {
        for bn in [&mut self.bn1, &mut self.bn4] {
            if bn.training.is_enabled() {
                bn.num_batches_tracked += 1;
            }
        }
    }
}

/// `FeatureMap`: a 1x1 convolution with bias (raw logits).
#[derive(Module, Debug)]
pub struct Head {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
}

impl Head {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        )
    }
}

/// Which part of the network a fine-tuning run leaves as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Freeze {
    /// Everything trains.
    #[default]
    Nothing,
    /// `input_block` and `contract_blocks`: no gradients, no updates, BatchNorm on its running
    /// statistics (which stay as loaded).
    Encoder,
    /// The encoder and the `bridge`.
    EncoderAndBridge,
}

/// The challenge U-Net as a trainable burn module (spec §d.2), on an autodiff device.
#[derive(Module, Debug)]
pub struct TrainUNet {
    pub input_block: DoubleConv,
    pub contract_blocks: Vec<DoubleConv>,
    pub bridge: DoubleConv,
    pub expand_blocks: Vec<DoubleConv>,
    pub sic_feature_map: Head,
    pub sod_feature_map: Head,
    pub floe_feature_map: Head,
    /// `unet_conv_filters`.
    pub filters: Vec<usize>,
    #[module(skip)]
    pub sic: SicHead,
}

fn pool(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}

/// Source rows (or columns) and weights of PyTorch's bilinear `align_corners=True` resize of
/// one axis, computed in float32 as PyTorch's CPU kernel (and [`crate::cpu`]) does.
#[allow(clippy::type_complexity)]
fn bilinear_taps(input: usize, output: usize) -> (Vec<i32>, Vec<i32>, Vec<f32>, Vec<f32>) {
    let scale = if output > 1 {
        (input as f32 - 1.0) / (output as f32 - 1.0)
    } else {
        0.0
    };
    let mut taps = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in 0..output {
        let real = scale * d as f32;
        let i0 = (real as usize).min(input - 1);
        let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
        let l1 = real - i0 as f32;
        taps.0.push(i0 as i32);
        taps.1.push(i1 as i32);
        taps.2.push(1.0 - l1);
        taps.3.push(l1);
    }
    taps
}

/// Resizes one axis (2 or 3) of `x` to `output` with bilinear `align_corners=True` weights, as
/// two row selections and a weighted sum. burn's wgpu backend has no backward pass for
/// bilinear `interpolate`; `select` and broadcast products have one.
fn bilinear_axis(x: Tensor<4>, axis: usize, output: usize) -> Tensor<4> {
    let input = x.dims()[axis];
    let device = x.device();
    let (i0, i1, w0, w1) = bilinear_taps(input, output);
    let idx = |v: Vec<i32>| Tensor::<1, Int>::from_data(TensorData::new(v, [output]), &device);
    let mut shape = [1, 1, 1, 1];
    shape[axis] = output;
    let wt = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, shape), &device);
    let a = x.clone().select(axis, idx(i0)).mul(wt(w0));
    let b = x.select(axis, idx(i1)).mul(wt(w1));
    a.add(b)
}

/// Upsample ×2 (bilinear, align_corners), zero-pad bottom/right to the skip, concat [up, skip].
fn up_cat(y: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = skip.dims();
    let [_, _, dh, dw] = y.dims();
    let up = if dh > 0 && dw > 0 {
        bilinear_axis(bilinear_axis(y, 2, 2 * dh), 3, 2 * dw)
    } else {
        y
    };
    let [_, _, uh, uw] = up.dims();
    let up = if uh < h || uw < w {
        up.pad((0, w - uw, 0, h - uh), PadMode::Constant(0.0))
    } else {
        up
    };
    Tensor::cat(vec![up, skip], 1)
}

/// PyTorch's prefix of each DoubleConv, with its channels, in registration order.
fn double_convs(arch: &Architecture) -> Vec<(String, usize, usize)> {
    let f = &arch.filters;
    let l = f.len();
    let mut v = vec![(
        "input_block.double_conv".to_string(),
        arch.in_channels,
        f[0],
    )];
    for i in 1..l {
        v.push((
            format!("contract_blocks.{}.double_conv.double_conv", i - 1),
            f[i - 1],
            f[i],
        ));
    }
    v.push((
        "bridge.double_conv.double_conv".to_string(),
        f[l - 1],
        f[l - 1],
    ));
    for (k, (cin, cout)) in arch.expand_channels().into_iter().enumerate() {
        v.push((
            format!("expand_blocks.{k}.double_conv.double_conv"),
            cin,
            cout,
        ));
    }
    v
}

/// Training builds plain U-Nets only: an attention checkpoint is refused by name rather than
/// trained without its gates.
fn plain(arch: Architecture) -> Result<Architecture, String> {
    match arch.kind {
        Kind::Plain => Ok(arch),
        Kind::Attention => Err(
            "is an attention U-Net; icelens runs and scores it, but fine-tunes plain U-Nets only"
                .into(),
        ),
    }
}

/// The architecture of a freshly built network.
pub fn architecture(filters: &[usize], sic: SicHead) -> Result<Architecture, String> {
    if filters.is_empty() || filters.contains(&0) {
        return Err(format!(
            "filters {filters:?}: need at least one level, none empty"
        ));
    }
    let n_sic = match sic {
        SicHead::Classification => Chart::SIC.n_outputs(),
        SicHead::Regression => 1,
    };
    Ok(Architecture {
        filters: filters.to_vec(),
        in_channels: N_INPUT,
        head_outputs: [n_sic, Chart::SOD.n_outputs(), Chart::FLOE.n_outputs()],
        sic,
        kind: Kind::Plain,
    })
}

/// Where the values of a new network come from: a float tensor by PyTorch name, shape and the
/// fan-in of its layer (for initialisation).
type ValueFn<'a> = dyn FnMut(&str, &[usize], usize) -> Vec<f32> + 'a;

fn param<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_data(TensorData::new(v, shape), device)
}

fn running(v: Vec<f32>, n: usize, device: &Device) -> RunningState<Tensor<1>> {
    RunningState::new(Tensor::from_data(TensorData::new(v, [n]), device))
}

/// PyTorch's default initialisation of a fresh network: convolution weights kaiming-uniform
/// with a = sqrt(5), i.e. U(±1/sqrt(fan_in)), head biases U(±1/sqrt(fan_in)), BatchNorm γ 1,
/// β 0, running mean 0, running variance 1.
fn fresh_value(rng: &mut SplitMix64, name: &str, shape: &[usize], fan_in: usize) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    if shape.len() == 4 || name.contains("_feature_map.") {
        (0..n).map(|_| rng.uniform(bound)).collect()
    } else if name.ends_with(".weight") || name.ends_with(".running_var") {
        vec![1.0; n]
    } else {
        vec![0.0; n]
    }
}

/// A flattened tensor with its PyTorch name and shape.
type NamedTensor = (String, Vec<usize>, Tensor<1>);
/// Names and shapes of the tensors in a flat export, in order.
type Layout = Vec<(String, Vec<usize>)>;

fn build_bn(
    value: &mut ValueFn,
    counts: &dyn Fn(&str) -> i64,
    p: &str,
    cout: usize,
    device: &Device,
) -> BatchNorm2d {
    let mut g = |t: &str| value(&format!("{p}.{t}"), &[cout], 0);
    BatchNorm2d {
        weight: param(g("weight"), [cout], device),
        bias: param(g("bias"), [cout], device),
        running_mean: running(g("running_mean"), cout, device),
        running_var: running(g("running_var"), cout, device),
        training: Param::from_bool(true),
        num_batches_tracked: counts(&format!("{p}.num_batches_tracked")),
    }
}

impl TrainUNet {
    fn build(
        arch: &Architecture,
        device: &Device,
        value: &mut ValueFn,
        counts: &dyn Fn(&str) -> i64,
    ) -> Self {
        let device = device.clone().autodiff();
        let mut doubles = Vec::new();
        for (p, cin, cout) in double_convs(arch) {
            let w0 = value(&format!("{p}.0.weight"), &[cout, cin, 3, 3], cin * 9);
            let bn1 = build_bn(value, counts, &format!("{p}.1"), cout, &device);
            let w3 = value(&format!("{p}.3.weight"), &[cout, cout, 3, 3], cout * 9);
            let bn4 = build_bn(value, counts, &format!("{p}.4"), cout, &device);
            doubles.push(DoubleConv {
                conv0: param(w0, [cout, cin, 3, 3], &device),
                bn1,
                conv3: param(w3, [cout, cout, 3, 3], &device),
                bn4,
            });
        }
        let l = arch.filters.len();
        let mut doubles = doubles.into_iter();
        let input_block = doubles.next().expect("input block");
        let contract_blocks: Vec<DoubleConv> = doubles.by_ref().take(l - 1).collect();
        let bridge = doubles.next().expect("bridge");
        let expand_blocks: Vec<DoubleConv> = doubles.collect();
        let f0 = arch.filters[0];
        let mut head = |chart: Chart, n: usize| {
            let p = head_prefix(chart);
            let w = value(&format!("{p}.weight"), &[n, f0, 1, 1], f0);
            let b = value(&format!("{p}.bias"), &[n], f0);
            Head {
                weight: param(w, [n, f0, 1, 1], &device),
                bias: param(b, [n], &device),
            }
        };
        let sic_feature_map = head(Chart::SIC, arch.head_outputs[0]);
        let sod_feature_map = head(Chart::SOD, arch.head_outputs[1]);
        let floe_feature_map = head(Chart::FLOE, arch.head_outputs[2]);
        TrainUNet {
            input_block,
            contract_blocks,
            bridge,
            expand_blocks,
            sic_feature_map,
            sod_feature_map,
            floe_feature_map,
            filters: arch.filters.clone(),
            sic: arch.sic,
        }
    }

    /// Starts from a checkpoint (transfer / fine-tuning): every parameter, the BatchNorm running
    /// statistics and `num_batches_tracked`. The model lives on `device.autodiff()`.
    pub fn from_state_dict(sd: &StateDict, device: &Device) -> Result<Self, String> {
        let arch = plain(Architecture::infer(sd)?)?;
        let mut value = |name: &str, _: &[usize], _: usize| {
            sd.tensors
                .get(name)
                .map(|t| t.data.clone())
                .expect("Architecture::infer checked every tensor")
        };
        let counts = |name: &str| sd.integer_values.get(name).copied().unwrap_or(0);
        Ok(Self::build(&arch, device, &mut value, &counts))
    }

    /// A fresh network with PyTorch's default initialisation, seeded.
    pub fn new(
        filters: &[usize],
        sic: SicHead,
        seed: u64,
        device: &Device,
    ) -> Result<Self, String> {
        let arch = architecture(filters, sic)?;
        let mut rng = SplitMix64::new(seed);
        let mut value =
            |name: &str, shape: &[usize], fan_in: usize| fresh_value(&mut rng, name, shape, fan_in);
        Ok(Self::build(&arch, device, &mut value, &|_| 0))
    }

    /// A larger (or equal) network initialised from a smaller checkpoint the way the fork's
    /// `UNetTrans` does (spec §d.5): the convolution weights of the encoder levels both have
    /// (`input_block`, `contract_blocks.i`), of the decoder levels at the same resolution
    /// (`expand_blocks` counted from the output: the last of each, the one before, ...) and
    /// the head weights are copied where the shapes agree; BatchNorm parameters, running
    /// statistics and biases start fresh, and a 12-channel SIC head is dropped for a regression
    /// head (its shape differs). Returns the network and the names of the copied tensors.
    pub fn from_smaller(
        small: &StateDict,
        filters: &[usize],
        sic: SicHead,
        seed: u64,
        device: &Device,
    ) -> Result<(Self, Vec<String>), String> {
        let src = plain(Architecture::infer(small)?)?;
        let arch = architecture(filters, sic)?;
        let (ls, l) = (src.levels(), arch.levels());
        if ls > l {
            return Err(format!(
                "the checkpoint has {ls} levels, more than the {l} of the new network"
            ));
        }
        // Target name -> source name for every transferable tensor.
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        let mut conv = |t: String, s: String| {
            for i in ["0", "3"] {
                map.insert(format!("{t}.{i}.weight"), format!("{s}.{i}.weight"));
            }
        };
        conv(
            "input_block.double_conv".into(),
            "input_block.double_conv".into(),
        );
        for i in 0..ls - 1 {
            let p = format!("contract_blocks.{i}.double_conv.double_conv");
            conv(p.clone(), p);
        }
        for j in 0..ls {
            conv(
                format!("expand_blocks.{}.double_conv.double_conv", l - 1 - j),
                format!("expand_blocks.{}.double_conv.double_conv", ls - 1 - j),
            );
        }
        for c in Chart::ALL {
            let p = head_prefix(c);
            map.insert(format!("{p}.weight"), format!("{p}.weight"));
        }
        let mut copied = Vec::new();
        let mut rng = SplitMix64::new(seed);
        let mut value = |name: &str, shape: &[usize], fan_in: usize| {
            // Draw first in any case so that the fresh values do not depend on what is copied.
            let fresh = fresh_value(&mut rng, name, shape, fan_in);
            match map.get(name).and_then(|s| small.tensors.get(s)) {
                Some(t) if t.shape == shape => {
                    copied.push(name.to_string());
                    t.data.clone()
                }
                _ => fresh,
            }
        };
        let net = Self::build(&arch, device, &mut value, &|_| 0);
        Ok((net, copied))
    }

    /// The network's shape.
    pub fn arch(&self) -> Architecture {
        let n = |h: &Head| h.bias.lazy_shape().num_elements();
        Architecture {
            filters: self.filters.clone(),
            in_channels: N_INPUT,
            head_outputs: [
                n(&self.sic_feature_map),
                n(&self.sod_feature_map),
                n(&self.floe_feature_map),
            ],
            sic: self.sic,
            kind: Kind::Plain,
        }
    }

    /// The device the parameters live on (the autodiff one while training).
    pub fn device(&self) -> Device {
        self.sic_feature_map.bias.val().device()
    }

    /// `2^levels`: the input sides the pooling divides evenly.
    pub fn divisor(&self) -> usize {
        1 << self.filters.len()
    }

    /// Raw head outputs `[SIC, SOD, FLOE]` for a `[B, 24, H, W]` input. In training mode on the
    /// autodiff device this updates the BatchNorm running statistics, like PyTorch's
    /// `model.train()`; use [`Module::valid`] for evaluation.
    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let mut skips = vec![self.input_block.forward(x)];
        for block in &self.contract_blocks {
            let pooled = pool(skips.last().expect("skip").clone());
            skips.push(block.forward(pooled));
        }
        let mut y = self
            .bridge
            .forward(pool(skips.last().expect("skip").clone()));
        for block in &self.expand_blocks {
            let skip = skips.pop().expect("one skip per expanding block");
            y = block.forward(up_cat(y, skip));
        }
        [
            self.sic_feature_map.forward(y.clone()),
            self.sod_feature_map.forward(y.clone()),
            self.floe_feature_map.forward(y),
        ]
    }

    /// Freezes the encoder (and optionally the bridge): no gradients, no optimiser updates,
    /// BatchNorm on its running statistics, which then stay as they are.
    pub fn freeze_encoder(mut self, freeze: Freeze) -> Self {
        if freeze == Freeze::Nothing {
            return self;
        }
        self.input_block = self.input_block.freeze();
        self.contract_blocks = self
            .contract_blocks
            .into_iter()
            .map(Module::freeze)
            .collect();
        if freeze == Freeze::EncoderAndBridge {
            self.bridge = self.bridge.freeze();
        }
        self
    }

    /// A copy that later training of `self` does not change (burn shares BatchNorm running
    /// statistics between clones of a module).
    pub fn snapshot(&self) -> Self {
        TrainUNet {
            input_block: self.input_block.snapshot(),
            contract_blocks: self
                .contract_blocks
                .iter()
                .map(DoubleConv::snapshot)
                .collect(),
            bridge: self.bridge.snapshot(),
            expand_blocks: self
                .expand_blocks
                .iter()
                .map(DoubleConv::snapshot)
                .collect(),
            sic_feature_map: self.sic_feature_map.clone(),
            sod_feature_map: self.sod_feature_map.clone(),
            floe_feature_map: self.floe_feature_map.clone(),
            filters: self.filters.clone(),
            sic: self.sic,
        }
    }

    /// Counts one training batch in the `num_batches_tracked` of every BatchNorm in training
    /// mode (what PyTorch does in each training-mode forward).
    pub fn count_batch(&mut self) {
        self.input_block.count_batch();
        for b in &mut self.contract_blocks {
            b.count_batch();
        }
        self.bridge.count_batch();
        for b in &mut self.expand_blocks {
            b.count_batch();
        }
    }

    fn doubles(&self) -> Vec<&DoubleConv> {
        let mut v = vec![&self.input_block];
        v.extend(self.contract_blocks.iter());
        v.push(&self.bridge);
        v.extend(self.expand_blocks.iter());
        v
    }

    /// Every float tensor with its PyTorch name and shape, flattened, in PyTorch's order; and
    /// the `num_batches_tracked` buffers.
    fn named(&self) -> (Vec<NamedTensor>, Vec<(String, i64)>) {
        let arch = self.arch();
        let mut floats = Vec::new();
        let mut ints = Vec::new();
        let flat = |t: Tensor<4>| {
            let n = t.shape().num_elements();
            t.detach().reshape([n])
        };
        for ((p, cin, cout), d) in double_convs(&arch).into_iter().zip(self.doubles()) {
            floats.push((
                format!("{p}.0.weight"),
                vec![cout, cin, 3, 3],
                flat(d.conv0.val()),
            ));
            let mut bn = |i: &str, b: &BatchNorm2d, floats: &mut Vec<NamedTensor>| {
                for (t, v) in [
                    ("weight", b.weight.val()),
                    ("bias", b.bias.val()),
                    ("running_mean", b.running_mean.value_sync()),
                    ("running_var", b.running_var.value_sync()),
                ] {
                    floats.push((format!("{p}.{i}.{t}"), vec![cout], v.detach()));
                }
                ints.push((
                    format!("{p}.{i}.num_batches_tracked"),
                    b.num_batches_tracked,
                ));
            };
            bn("1", &d.bn1, &mut floats);
            floats.push((
                format!("{p}.3.weight"),
                vec![cout, cout, 3, 3],
                flat(d.conv3.val()),
            ));
            bn("4", &d.bn4, &mut floats);
        }
        let f0 = arch.filters[0];
        for (chart, h) in Chart::ALL.iter().zip([
            &self.sic_feature_map,
            &self.sod_feature_map,
            &self.floe_feature_map,
        ]) {
            let p = head_prefix(*chart);
            let n = h.bias.lazy_shape().num_elements();
            floats.push((
                format!("{p}.weight"),
                vec![n, f0, 1, 1],
                flat(h.weight.val()),
            ));
            floats.push((format!("{p}.bias"), vec![n], h.bias.val().detach()));
        }
        (floats, ints)
    }

    /// All tensors in one flat device tensor (one read-back), and how to cut it.
    fn export_parts(&self) -> (Tensor<1>, Layout, Vec<(String, i64)>) {
        let (floats, ints) = self.named();
        let layout = floats
            .iter()
            .map(|(n, s, _)| (n.clone(), s.clone()))
            .collect();
        let all = Tensor::cat(floats.into_iter().map(|(_, _, t)| t).collect(), 0);
        (all, layout, ints)
    }

    fn assemble(
        data: TensorData,
        layout: Layout,
        ints: Vec<(String, i64)>,
    ) -> Result<StateDict, String> {
        let data = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("reading the weights back: {e:?}"))?;
        let mut tensors = BTreeMap::new();
        let mut order = Vec::new();
        let mut at = 0;
        let int_names: BTreeMap<String, i64> = ints.iter().cloned().collect();
        for (name, shape) in layout {
            let n: usize = shape.iter().product();
            let chunk = data
                .get(at..at + n)
                .ok_or("the weights read back are shorter than the network")?
                .to_vec();
            at += n;
            order.push(name.clone());
            if name.ends_with(".running_var") {
                let nbt = name.replace(".running_var", ".num_batches_tracked");
                if int_names.contains_key(&nbt) {
                    tensors.insert(name, SdTensor { shape, data: chunk });
                    order.push(nbt);
                    continue;
                }
            }
            tensors.insert(name, SdTensor { shape, data: chunk });
        }
        Ok(state_dict(
            tensors,
            ints.iter().map(|(n, _)| n.clone()).collect(),
            int_names,
            order,
        ))
    }

    /// The weights as a PyTorch state_dict: exactly the challenge's keys and shapes (114 for
    /// pizza_marinara), `num_batches_tracked` as integer buffers, in PyTorch's order. Blocking
    /// read-back (native only).
    #[cfg(not(target_family = "wasm"))]
    pub fn to_state_dict(&self) -> Result<StateDict, String> {
        let (all, layout, ints) = self.export_parts();
        let data = all
            .try_into_data()
            .map_err(|e| format!("reading the weights back: {e:?}"))?;
        Self::assemble(data, layout, ints)
    }

    /// [`Self::to_state_dict`] with an asynchronous read-back, for the browser.
    pub async fn to_state_dict_async(&self) -> Result<StateDict, String> {
        let (all, layout, ints) = self.export_parts();
        let data = all
            .into_data_async()
            .await
            .map_err(|e| format!("reading the weights back: {e:?}"))?;
        Self::assemble(data, layout, ints)
    }
}

/// Builds a [`StateDict`] (one place to adapt when its fields change).
fn state_dict(
    tensors: BTreeMap<String, SdTensor>,
    integer_buffers: Vec<String>,
    integer_values: BTreeMap<String, i64>,
    order: Vec<String>,
) -> StateDict {
    StateDict {
        tensors,
        integer_buffers,
        integer_values,
        epoch: None,
        format: WeightsFormat::PyTorch,
        order,
        metadata: BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Data.

/// One training example: the 24-channel input and the three charts of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub height: usize,
    pub width: usize,
    /// `[24, height, width]`, channel-major, as [`Scene::input_window`] builds it.
    pub x: Vec<f32>,
    /// SIC, SOD, FLOE class indices, `height * width` each, 255 where unlabelled.
    pub y: [Vec<u8>; 3],
}

impl Patch {
    /// The patch of a window of a labelled scene.
    pub fn from_window(scene: &Scene, w: Window) -> Result<Patch, String> {
        let charts = scene
            .charts
            .as_ref()
            .ok_or("the scene has no ice charts (a test-set file)")?;
        let x = scene.input_window(w)?;
        let crop = |c: &Vec<u8>| {
            let mut out = Vec::with_capacity(w.pixels());
            for r in w.row..w.row + w.height {
                let s = r * scene.samples + w.col;
                out.extend_from_slice(&c[s..s + w.width]);
            }
            out
        };
        Ok(Patch {
            height: w.height,
            width: w.width,
            x,
            y: [crop(&charts[0]), crop(&charts[1]), crop(&charts[2])],
        })
    }

    /// Pixels with a SIC label.
    pub fn labelled_sic(&self) -> usize {
        self.y[0].iter().filter(|v| **v != CHART_FILL).count()
    }
}

/// Random `size x size` training patches as the starter kit draws them (spec §b.4): a scene
/// uniformly at random (with replacement) for every draw, `row`, `col` uniform in
/// `[0, lines - size)` and `[0, samples - size)` (0 when the side equals `size`), and a patch is
/// rejected unless more than one SIC pixel differs from 255. Scenes without charts or smaller
/// than `size` are never drawn. Deterministic for a seed.
///
/// The input is the inference-time one ([`Scene::input_window`]: the 2 km grid stretched over
/// the whole scene), not the training loader's 11-cell crop (see the module notes). Gives up
/// after `100 * n + 1000` draws and returns the patches found so far (fewer than `n` when the
/// scenes are mostly unlabelled); an error when none of the scenes can give a patch.
pub fn sample_patches(
    scenes: &[&Scene],
    n: usize,
    size: usize,
    seed: u64,
) -> Result<Vec<Patch>, String> {
    if size == 0 {
        return Err("patch size 0".into());
    }
    let usable: Vec<&Scene> = scenes
        .iter()
        .copied()
        .filter(|s| s.charts.is_some() && s.lines >= size && s.samples >= size)
        .collect();
    if usable.is_empty() {
        return Err(format!(
            "no labelled scene of at least {size} x {size} pixels to draw patches from"
        ));
    }
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut draws = 0;
    while out.len() < n && draws < 100 * n + 1000 {
        draws += 1;
        let scene = usable[rng.below(usable.len())];
        let pick = |rng: &mut SplitMix64, len: usize| {
            if len > size {
                rng.below(len - size)
            } else {
                0
            }
        };
        let row = pick(&mut rng, scene.lines);
        let col = pick(&mut rng, scene.samples);
        let sic = scene.chart(Chart::SIC).expect("usable scenes have charts");
        let labelled = (row..row + size)
            .map(|r| {
                sic[r * scene.samples + col..r * scene.samples + col + size]
                    .iter()
                    .filter(|v| **v != CHART_FILL)
                    .count()
            })
            .sum::<usize>();
        if labelled <= 1 {
            continue;
        }
        out.push(Patch::from_window(
            scene,
            Window::new(row, col, size, size),
        )?);
    }
    Ok(out)
}

/// Splits items into (training, validation), `fraction` of them (rounded, at least one when
/// `fraction > 0` and there are two or more, never all) drawn for validation with `seed`; both
/// keep the input order. Use it on scenes when there are several, so that validation patches
/// come from scenes the model does not train on, or on patches otherwise.
pub fn split_validation<T>(items: Vec<T>, fraction: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let n = items.len();
    let mut k = (n as f64 * fraction.clamp(0.0, 1.0)).round() as usize;
    if fraction > 0.0 && n >= 2 {
        k = k.max(1);
    }
    k = k.min(n.saturating_sub(1));
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut idx);
    let val: std::collections::BTreeSet<usize> = idx[..k].iter().copied().collect();
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, item) in items.into_iter().enumerate() {
        if val.contains(&i) {
            valid.push(item);
        } else {
            train.push(item);
        }
    }
    (train, valid)
}

/// Training and validation patches for a run: `n` patches of `config.patch_size` in all,
/// `config.val_fraction` of them for validation, seeded by `config.seed`. With two or more
/// labelled scenes the scenes are split (validation patches come from scenes the model does
/// not train on, as in the challenge); with one, its patches are.
pub fn prepare_patches(
    scenes: &[&Scene],
    n: usize,
    config: &TrainConfig,
) -> Result<(Vec<Patch>, Vec<Patch>), String> {
    let size = config.patch_size;
    let labelled: Vec<&Scene> = scenes
        .iter()
        .copied()
        .filter(|s| s.charts.is_some() && s.lines >= size && s.samples >= size)
        .collect();
    let n_val = ((n as f64) * config.val_fraction.clamp(0.0, 1.0)).round() as usize;
    if labelled.len() >= 2 && n_val > 0 {
        let (train_scenes, val_scenes) =
            split_validation(labelled, config.val_fraction, config.seed);
        let train = sample_patches(&train_scenes, n - n_val, size, config.seed)?;
        let val = sample_patches(&val_scenes, n_val, size, config.seed ^ 0x5EED)?;
        Ok((train, val))
    } else {
        let all = sample_patches(&labelled, n, size, config.seed)?;
        Ok(split_validation(all, config.val_fraction, config.seed))
    }
}

// ---------------------------------------------------------------------------------------------
// Losses.

/// Sum over labelled pixels (not 255, and a valid class of the head) of `-log softmax(logits)`
/// at the target class, and how many pixels that is. `logits` `[B, C, H, W]`, `target`
/// `B * H * W` class indices.
pub fn cross_entropy_sum(logits: Tensor<4>, target: &[u8]) -> (Tensor<1>, usize) {
    let [b, c, h, w] = logits.dims();
    assert_eq!(target.len(), b * h * w, "one target per pixel");
    let device = logits.device();
    let mut idx = Vec::with_capacity(target.len());
    let mut mask = Vec::with_capacity(target.len());
    let mut count = 0;
    for &t in target {
        let ok = t != CHART_FILL && (t as usize) < c;
        count += ok as usize;
        idx.push(if ok { t as i32 } else { 0 });
        mask.push(if ok { 1f32 } else { 0.0 });
    }
    let idx = Tensor::<4, Int>::from_data(TensorData::new(idx, [b, 1, h, w]), &device);
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &device);
    let picked = log_softmax(logits, 1).gather(1, idx);
    (picked.mul(mask).sum().neg(), count)
}

/// Sum over labelled pixels of `(prediction - class index)^2` for a one-channel regression
/// head, and how many pixels that is.
pub fn squared_error_sum(pred: Tensor<4>, target: &[u8]) -> (Tensor<1>, usize) {
    let [b, c, h, w] = pred.dims();
    assert_eq!(c, 1, "a regression head has one channel");
    assert_eq!(target.len(), b * h * w, "one target per pixel");
    let device = pred.device();
    let mut t = Vec::with_capacity(target.len());
    let mut mask = Vec::with_capacity(target.len());
    let mut count = 0;
    for &v in target {
        let ok = v != CHART_FILL;
        count += ok as usize;
        t.push(if ok { v as f32 } else { 0.0 });
        mask.push(if ok { 1f32 } else { 0.0 });
    }
    let t = Tensor::<4>::from_data(TensorData::new(t, [b, 1, h, w]), &device);
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &device);
    (pred.sub(t).mul(mask).square().sum(), count)
}

/// `CrossEntropyLoss(ignore_index=255)` with PyTorch's mean reduction: the mean over the
/// labelled pixels; `None` when there are none (PyTorch gives NaN).
pub fn masked_cross_entropy(logits: Tensor<4>, target: &[u8]) -> Option<Tensor<1>> {
    let (sum, n) = cross_entropy_sum(logits, target);
    (n > 0).then(|| sum.div_scalar(n as f64))
}

/// The fork's regression loss: `MSELoss` over the labelled pixels; `None` when there are none.
pub fn masked_mse(pred: Tensor<4>, target: &[u8]) -> Option<Tensor<1>> {
    let (sum, n) = squared_error_sum(pred, target);
    (n > 0).then(|| sum.div_scalar(n as f64))
}

/// Per-chart loss sums and labelled-pixel counts of a batch: cross-entropy for classification
/// heads, squared error for a regression SIC head.
pub fn chart_loss_sums(
    outputs: [Tensor<4>; 3],
    targets: &[Vec<u8>; 3],
    sic: SicHead,
) -> ([Tensor<1>; 3], [usize; 3]) {
    let [o_sic, o_sod, o_floe] = outputs;
    let (s0, n0) = match sic {
        SicHead::Classification => cross_entropy_sum(o_sic, &targets[0]),
        SicHead::Regression => squared_error_sum(o_sic, &targets[0]),
    };
    let (s1, n1) = cross_entropy_sum(o_sod, &targets[1]);
    let (s2, n2) = cross_entropy_sum(o_floe, &targets[2]);
    ([s0, s1, s2], [n0, n1, n2])
}

// ---------------------------------------------------------------------------------------------
// Training.

/// The training recipe. Defaults are the starter kit's (spec §b.1).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Adam learning rate (1e-4; the fork's transfer run used 5e-5).
    pub lr: f64,
    pub batch_size: usize,
    /// Most epochs (validations) to run.
    pub epochs: usize,
    /// Training steps between validations (`epoch_len`, 500).
    pub steps_per_epoch: usize,
    /// Side of the training patches (256), for [`prepare_patches`].
    pub patch_size: usize,
    /// Share of the data held out for validation, for [`prepare_patches`].
    pub val_fraction: f64,
    /// Stop after this many validations without a new best; 0: never stop early.
    pub patience: usize,
    pub freeze: Freeze,
    /// Weights of the SIC, SOD and FLOE losses in the total.
    pub chart_weights: [f32; 3],
    /// Seeds the batch order (and, by convention, patch sampling and initialisation).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            batch_size: 8,
            epochs: 50,
            steps_per_epoch: 500,
            patch_size: 256,
            val_fraction: 0.1,
            patience: 10,
            freeze: Freeze::Nothing,
            chart_weights: [1.0, 1.0, 1.0],
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// The loss weights each head kind was trained with: 1, 1, 1 for the starter kit's
    /// classification; SIC 1, SOD 1, FLOE 0.5 for the fork's regression runs (spec §d.5).
    pub fn default_weights(sic: SicHead) -> [f32; 3] {
        match sic {
            SicHead::Classification => [1.0, 1.0, 1.0],
            SicHead::Regression => [1.0, 1.0, 0.5],
        }
    }
}

/// What one training step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps done so far, this one included.
    pub step: usize,
    /// The epoch this step belongs to (0-based).
    pub epoch: usize,
    /// The weighted total that was minimised.
    pub loss: f32,
    /// Unweighted mean loss per chart (SIC, SOD, FLOE); 0 without labelled pixels.
    pub chart_losses: [f32; 3],
    /// Labelled pixels per chart in the batch.
    pub labelled: [usize; 3],
}

/// What a validation found; it closes an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct ValReport {
    /// The epoch it closed (0-based).
    pub epoch: usize,
    /// Weighted total of the per-chart means over all validation pixels.
    pub loss: f32,
    pub chart_losses: [f32; 3],
    pub labelled: [usize; 3],
    /// Mean training loss of the epoch's steps.
    pub train_loss: f32,
    /// No validation patches: `loss` is the epoch's training loss.
    pub on_training_loss: bool,
    /// A new best: its weights are kept ([`Trainer::best_model`]).
    pub improved: bool,
    /// Training is over (all epochs, or `patience` validations without improvement).
    pub finished: bool,
    /// The challenge's scores of the validation patches' predictions (`None` without
    /// validation patches).
    pub scores: Option<Scores>,
}

/// The validation loss and scores of a model before training: where a run starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub loss: f32,
    pub chart_losses: [f32; 3],
    pub labelled: [usize; 3],
    pub scores: Scores,
}

/// A validation on the device, not read back yet.
struct ValTensors {
    sums: Tensor<1>,
    counts: [usize; 3],
    classes: Tensor<1, Int>,
}

/// A validation read back.
struct ValSums {
    sums: Vec<f32>,
    counts: [usize; 3],
    scores: Scores,
}

/// The class each output predicts, flattened per chart (SIC, SOD, FLOE): the argmax of a
/// classification head, the rounded value (0 to 10) of a regression SIC head, as inference
/// decides them.
fn predicted_classes(out: &[Tensor<4>; 3], sic: SicHead) -> [Tensor<1, Int>; 3] {
    let flat = |t: Tensor<4, Int>| {
        let n = t.dims().iter().product::<usize>();
        t.reshape([n])
    };
    let sic_classes = match sic {
        SicHead::Classification => out[0].clone().argmax(1),
        SicHead::Regression => out[0].clone().round().clamp(0.0, 10.0).int(),
    };
    [
        flat(sic_classes),
        flat(out[1].clone().argmax(1)),
        flat(out[2].clone().argmax(1)),
    ]
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainState {
    pub step: usize,
    /// Epochs closed by a validation.
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub best_loss: Option<f32>,
    pub best_epoch: Option<usize>,
    pub epochs_without_improvement: usize,
    pub stopped_early: bool,
}

/// An event of [`Trainer::run`].
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    Step(StepReport),
    Validation(ValReport),
}

/// A training run: the model, Adam, the data, the batch order, early stopping, and the weights
/// of the best validation.
pub struct Trainer {
    model: TrainUNet,
    best: Option<TrainUNet>,
    optim: ModuleOptimizer,
    config: TrainConfig,
    train: Vec<Patch>,
    val: Vec<Patch>,
    device: Device,
    rng: SplitMix64,
    order: Vec<usize>,
    cursor: usize,
    state: TrainState,
    epoch_loss: f64,
    epoch_steps: usize,
}

fn stack(patches: &[&Patch]) -> (Vec<f32>, [Vec<u8>; 3], [usize; 4]) {
    let (h, w) = (patches[0].height, patches[0].width);
    let mut x = Vec::with_capacity(patches.len() * N_INPUT * h * w);
    let mut y: [Vec<u8>; 3] = Default::default();
    for p in patches {
        x.extend_from_slice(&p.x);
        for (dst, src) in y.iter_mut().zip(&p.y) {
            dst.extend_from_slice(src);
        }
    }
    (x, y, [patches.len(), N_INPUT, h, w])
}

fn check_patches(patches: &[Patch], what: &str) -> Result<Option<(usize, usize)>, String> {
    let Some(first) = patches.first() else {
        return Ok(None);
    };
    let (h, w) = (first.height, first.width);
    for p in patches {
        if (p.height, p.width) != (h, w)
            || p.x.len() != N_INPUT * h * w
            || p.y.iter().any(|c| c.len() != h * w)
        {
            return Err(format!(
                "{what} patches must all be {h} x {w} with 24 input channels and three charts"
            ));
        }
    }
    Ok(Some((h, w)))
}

impl Trainer {
    /// Prepares a run. The model is put in training mode (its encoder frozen if the config
    /// says so) on its autodiff device.
    pub fn new(
        model: TrainUNet,
        config: TrainConfig,
        train: Vec<Patch>,
        val: Vec<Patch>,
    ) -> Result<Trainer, String> {
        let (h, w) = check_patches(&train, "training")?.ok_or("no training patches")?;
        check_patches(&val, "validation")?;
        if config.batch_size == 0 || config.steps_per_epoch == 0 {
            return Err("batch size and steps per epoch must be at least 1".into());
        }
        let d = model.divisor();
        // BatchNorm needs more than one value per channel at the bridge, like PyTorch.
        if config.batch_size * (h / d) * (w / d) < 2 {
            return Err(format!(
                "{h} x {w} patches in batches of {} are too small for {} levels: the bridge \
                 would see one pixel (use patches of at least {} px)",
                config.batch_size,
                model.filters.len(),
                2 * d
            ));
        }
        let model = model.train().freeze_encoder(config.freeze);
        let device = model.device().autodiff();
        let optim = AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .init();
        let mut rng = SplitMix64::new(config.seed);
        let mut order: Vec<usize> = (0..train.len()).collect();
        rng.shuffle(&mut order);
        Ok(Trainer {
            model,
            best: None,
            optim,
            config,
            train,
            val,
            device,
            rng,
            order,
            cursor: 0,
            state: TrainState::default(),
            epoch_loss: 0.0,
            epoch_steps: 0,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The model as trained so far.
    pub fn model(&self) -> &TrainUNet {
        &self.model
    }

    /// The weights of the best validation so far (the current ones before any validation).
    pub fn best_model(&self) -> &TrainUNet {
        self.best.as_ref().unwrap_or(&self.model)
    }

    pub fn into_best_model(self) -> TrainUNet {
        self.best.unwrap_or(self.model)
    }

    /// Whether the epoch's steps are done and [`Self::validate`] should close it.
    pub fn epoch_done(&self) -> bool {
        self.state.step_in_epoch >= self.config.steps_per_epoch
    }

    /// All epochs run, or stopped early.
    pub fn finished(&self) -> bool {
        self.state.epoch >= self.config.epochs || self.state.stopped_early
    }

    fn next_batch(&mut self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.config.batch_size);
        while out.len() < self.config.batch_size {
            if self.cursor >= self.order.len() {
                self.rng.shuffle(&mut self.order);
                self.cursor = 0;
            }
            out.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        out
    }

    /// Forward, backward and an Adam update; gives the detached `[total, SIC, SOD, FLOE]`
    /// losses (not read back yet) and the labelled counts.
    fn step_tensors(&mut self) -> (Tensor<1>, [usize; 3]) {
        let idx = self.next_batch();
        let batch: Vec<&Patch> = idx.iter().map(|i| &self.train[*i]).collect();
        let (x, y, shape) = stack(&batch);
        let x = Tensor::<4>::from_data(TensorData::new(x, shape), &self.device);
        let out = self.model.forward(x);
        let (sums, counts) = chart_loss_sums(out, &y, self.model.sic);
        let mut total: Option<Tensor<1>> = None;
        let mut parts = Vec::with_capacity(3);
        for ((sum, n), wgt) in sums.into_iter().zip(counts).zip(self.config.chart_weights) {
            if n == 0 {
                parts.push(Tensor::<1>::zeros([1], &self.device));
                continue;
            }
            let mean = sum.div_scalar(n as f64);
            parts.push(mean.clone().detach());
            if wgt != 0.0 {
                let term = mean.mul_scalar(wgt as f64);
                total = Some(match total {
                    Some(t) => t.add(term),
                    None => term,
                });
            }
        }
        let total_value = match &total {
            Some(t) => t.clone().detach(),
            None => Tensor::<1>::zeros([1], &self.device),
        };
        if let Some(total) = total {
            let grads = GradientsParams::from_grads(total.backward(), &self.model);
            self.model = self.optim.step(self.config.lr, self.model.clone(), grads);
        }
        self.model.count_batch();
        let mut all = vec![total_value];
        all.extend(parts);
        (Tensor::cat(all, 0), counts)
    }

    fn finish_step(&mut self, data: TensorData, counts: [usize; 3]) -> Result<StepReport, String> {
        let v = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("reading the loss back: {e:?}"))?;
        self.state.step += 1;
        self.state.step_in_epoch += 1;
        self.epoch_loss += v[0] as f64;
        self.epoch_steps += 1;
        Ok(StepReport {
            step: self.state.step,
            epoch: self.state.epoch,
            loss: v[0],
            chart_losses: [v[1], v[2], v[3]],
            labelled: counts,
        })
    }

    /// One training step with a blocking read-back of its loss (native only).
    #[cfg(not(target_family = "wasm"))]
    pub fn step(&mut self) -> Result<StepReport, String> {
        let (t, counts) = self.step_tensors();
        let data = t
            .try_into_data()
            .map_err(|e| format!("reading the loss back: {e:?}"))?;
        self.finish_step(data, counts)
    }

    /// One training step, reading its loss back asynchronously (the browser's way).
    pub async fn step_async(&mut self) -> Result<StepReport, String> {
        let (t, counts) = self.step_tensors();
        let data = t
            .into_data_async()
            .await
            .map_err(|e| format!("reading the loss back: {e:?}"))?;
        self.finish_step(data, counts)
    }

    /// The validation loss sums `[SIC, SOD, FLOE]` and the predicted classes of every
    /// validation patch (per chunk: SIC, SOD, FLOE maps, flattened) on the device, in eval mode.
    fn val_tensors(&self) -> Option<ValTensors> {
        if self.val.is_empty() {
            return None;
        }
        let model = self.model.valid();
        let device = self.device.clone().without_autodiff();
        let mut acc: Option<Tensor<1>> = None;
        let mut counts = [0usize; 3];
        let mut classes = Vec::new();
        let refs: Vec<&Patch> = self.val.iter().collect();
        for chunk in refs.chunks(self.config.batch_size) {
            let (x, y, shape) = stack(chunk);
            let x = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
            let out = model.forward(x);
            classes.extend(predicted_classes(&out, model.sic));
            let (sums, n) = chart_loss_sums(out, &y, model.sic);
            for (c, k) in counts.iter_mut().zip(n) {
                *c += k;
            }
            let s = Tensor::cat(sums.into_iter().collect(), 0);
            acc = Some(match acc {
                Some(a) => a.add(s),
                None => s,
            });
        }
        acc.map(|sums| ValTensors {
            sums,
            counts,
            classes: Tensor::cat(classes, 0),
        })
    }

    /// Reads a validation back: loss sums, counts, and the scores of the predicted classes
    /// against the validation charts (the challenge's metrics over all validation pixels).
    fn read_val(
        &self,
        sums: TensorData,
        classes: TensorData,
        counts: [usize; 3],
    ) -> Result<ValSums, String> {
        let sums = sums
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("reading the validation loss back: {e:?}"))?;
        let pred: Vec<u8> = classes
            .iter::<i64>()
            .map(|v| v.clamp(0, 255) as u8)
            .collect();
        let mut conf: [Confusion; 3] = Default::default();
        let mut at = 0;
        for chunk in self.val.chunks(self.config.batch_size) {
            for (c, cm) in conf.iter_mut().enumerate() {
                for p in chunk {
                    let n = p.y[c].len();
                    let got = pred.get(at..at + n).ok_or("validation classes are short")?;
                    cm.add_maps(&p.y[c], got);
                    at += n;
                }
            }
        }
        Ok(ValSums {
            sums,
            counts,
            scores: Scores::from_confusions(&conf),
        })
    }

    fn val_loss(&self, v: &ValSums) -> (f32, [f32; 3]) {
        let mut means = [0f32; 3];
        let mut total = 0f32;
        for (c, mean) in means.iter_mut().enumerate() {
            if v.counts[c] > 0 {
                *mean = v.sums[c] / v.counts[c] as f32;
                total += self.config.chart_weights[c] * *mean;
            }
        }
        (total, means)
    }

    fn finish_validation(&mut self, sums: Option<ValSums>) -> ValReport {
        let train_loss = (self.epoch_loss / self.epoch_steps.max(1) as f64) as f32;
        let (loss, chart_losses, labelled, on_training_loss, scores) = match sums {
            Some(v) => {
                let (total, means) = self.val_loss(&v);
                (total, means, v.counts, false, Some(v.scores))
            }
            None => (train_loss, [0.0; 3], [0; 3], true, None),
        };
        let epoch = self.state.epoch;
        let improved = loss.is_finite() && self.state.best_loss.is_none_or(|b| loss < b);
        if improved {
            self.state.best_loss = Some(loss);
            self.state.best_epoch = Some(epoch);
            self.state.epochs_without_improvement = 0;
            self.best = Some(self.model.snapshot());
        } else {
            self.state.epochs_without_improvement += 1;
            if self.config.patience > 0
                && self.state.epochs_without_improvement >= self.config.patience
            {
                self.state.stopped_early = true;
            }
        }
        self.state.epoch += 1;
        self.state.step_in_epoch = 0;
        self.epoch_loss = 0.0;
        self.epoch_steps = 0;
        ValReport {
            epoch,
            loss,
            chart_losses,
            labelled,
            train_loss,
            on_training_loss,
            improved,
            finished: self.finished(),
            scores,
        }
    }

    fn baseline_report(&self, v: &ValSums) -> Baseline {
        let (loss, chart_losses) = self.val_loss(v);
        Baseline {
            loss,
            chart_losses,
            labelled: v.counts,
            scores: v.scores,
        }
    }

    /// Evaluates the validation patches (eval mode, running statistics), closes the epoch,
    /// keeps the weights if they are the best so far and updates early stopping. Blocking
    /// read-back (native only).
    #[cfg(not(target_family = "wasm"))]
    pub fn validate(&mut self) -> Result<ValReport, String> {
        let sums = match self.val_tensors() {
            Some(t) => Some(
                self.read_val(
                    t.sums
                        .try_into_data()
                        .map_err(|e| format!("reading the validation loss back: {e:?}"))?,
                    t.classes
                        .try_into_data()
                        .map_err(|e| format!("reading the validation classes back: {e:?}"))?,
                    t.counts,
                )?,
            ),
            None => None,
        };
        Ok(self.finish_validation(sums))
    }

    /// [`Self::validate`] with an asynchronous read-back, for the browser.
    pub async fn validate_async(&mut self) -> Result<ValReport, String> {
        let sums = match self.val_tensors() {
            Some(t) => Some(
                self.read_val(
                    t.sums
                        .into_data_async()
                        .await
                        .map_err(|e| format!("reading the validation loss back: {e:?}"))?,
                    t.classes
                        .into_data_async()
                        .await
                        .map_err(|e| format!("reading the validation classes back: {e:?}"))?,
                    t.counts,
                )?,
            ),
            None => None,
        };
        Ok(self.finish_validation(sums))
    }

    /// The validation loss and scores of the model as it is, without closing an epoch: the
    /// "before" of a fine-tuning run. `None` without validation patches. Native only.
    #[cfg(not(target_family = "wasm"))]
    pub fn baseline(&self) -> Result<Option<Baseline>, String> {
        let Some(t) = self.val_tensors() else {
            return Ok(None);
        };
        let v = self.read_val(
            t.sums
                .try_into_data()
                .map_err(|e| format!("reading the validation loss back: {e:?}"))?,
            t.classes
                .try_into_data()
                .map_err(|e| format!("reading the validation classes back: {e:?}"))?,
            t.counts,
        )?;
        Ok(Some(self.baseline_report(&v)))
    }

    /// [`Self::baseline`] with an asynchronous read-back, for the browser.
    pub async fn baseline_async(&self) -> Result<Option<Baseline>, String> {
        let Some(t) = self.val_tensors() else {
            return Ok(None);
        };
        let v = self.read_val(
            t.sums
                .into_data_async()
                .await
                .map_err(|e| format!("reading the validation loss back: {e:?}"))?,
            t.classes
                .into_data_async()
                .await
                .map_err(|e| format!("reading the validation classes back: {e:?}"))?,
            t.counts,
        )?;
        Ok(Some(self.baseline_report(&v)))
    }

    /// Runs to the end (all epochs or early stopping), reporting every step and validation;
    /// `on_event` returning `false` stops the run after that event. Native only.
    #[cfg(not(target_family = "wasm"))]
    pub fn run(&mut self, mut on_event: impl FnMut(&TrainEvent) -> bool) -> Result<(), String> {
        while !self.finished() {
            let event = if self.epoch_done() {
                TrainEvent::Validation(self.validate()?)
            } else {
                TrainEvent::Step(self.step()?)
            };
            if !on_event(&event) {
                break;
            }
        }
        Ok(())
    }
}
