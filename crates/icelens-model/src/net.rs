//! The challenge U-Net and the team's attention U-Net as one burn [`Module`]: the network
//! that trains (on an autodiff device) and the one that infers on the GPU ([`crate::gpu`]) are
//! this same definition, built from one [`Architecture`].
//!
//! [`BurnUNet`] has the blocks of spec §d.2 and §d.7 with the same tensors, and BatchNorm in
//! PyTorch's semantics (batch statistics, biased variance for normalising, unbiased variance
//! for the running estimate, momentum 0.1 while training; running statistics otherwise), so a
//! model trained here exports a state_dict ([`BurnUNet::to_state_dict`]) with exactly
//! PyTorch's keys, shapes and order, which [`UNet::from_state_dict`](crate::UNet::from_state_dict)
//! and PyTorch (`UNet` or `UNetAttention`, `strict=True`) both load.
//!
//! The ×2 bilinear upsampling (align_corners) of the expanding blocks is, on an autodiff device,
//! two `select`s and broadcast products per axis: burn 0.22's cubecl backends (wgpu, WebGPU)
//! have no backward pass for bilinear `interpolate` ("Bilinear interpolation backward is not
//! supported by JIT backend"). Without autodiff, and on burn's CPU backend (flex, whose
//! `interpolate` has a backward pass), it is burn's `interpolate`, which is faster: the
//! select's backward was a tenth of a CPU training step. Both use PyTorch's float32 source
//! positions.

use std::collections::BTreeMap;

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{batch_norm, batch_norm_train, conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode,
};
use burn::tensor::{Device, Int, Tensor, TensorData};

use icelens_core::checkpoint::{StateDict, Tensor as SdTensor, WeightsFormat};
use icelens_core::input::N_INPUT;
use icelens_core::Chart;

use crate::arch::{head_prefix, Architecture, Kind, SicHead};
use crate::error::{readback, ModelError};
use crate::rng::SplitMix64;

/// BatchNorm2d's defaults in the challenge's network.
pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;

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

    fn count_batch(&mut self) {
        if self.training.is_enabled() {
            self.num_batches_tracked += 1;
        }
    }
}

/// A 3×3 convolution without bias (padding 1) followed by BatchNorm: PyTorch's
/// `Sequential(Conv2d, BatchNorm2d)`, the unit both blocks are made of.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Param<Tensor<4>>,
    pub bn: BatchNorm2d,
}

impl ConvBn {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn
            .forward(crate::flex_conv::conv3x3_same(x, self.conv.val()))
    }

    fn snapshot(&self) -> Self {
        Self {
            conv: self.conv.clone(),
            bn: self.bn.snapshot(),
        }
    }
}

/// `DoubleConv`: [0] Conv3x3 (no bias), [1] BatchNorm, ReLU, [3] Conv3x3, [4] BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct DoubleConv {
    pub first: ConvBn,
    pub second: ConvBn,
}

impl DoubleConv {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.second.forward(relu(self.first.forward(x))))
    }

    fn snapshot(&self) -> Self {
        Self {
            first: self.first.snapshot(),
            second: self.second.snapshot(),
        }
    }

    fn batch_norms(&mut self) -> [&mut BatchNorm2d; 2] {
        [&mut self.first.bn, &mut self.second.bn]
    }
}

/// The attention gate of spec §d.7: ψ = σ(psi(ReLU(W_gate(gate) + W_x(skip)))).
#[derive(Module, Debug)]
pub struct AttentionGate {
    pub w_gate: ConvBn,
    pub w_x: ConvBn,
    pub psi: ConvBn,
}

impl AttentionGate {
    /// ψ `[B, 1, h, w]` for the gate signal (the upsampled deep tensor) and the skip.
    pub fn coefficients(&self, gate: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let a = relu(self.w_gate.forward(gate) + self.w_x.forward(skip));
        sigmoid(self.psi.forward(a))
    }

    fn snapshot(&self) -> Self {
        Self {
            w_gate: self.w_gate.snapshot(),
            w_x: self.w_x.snapshot(),
            psi: self.psi.snapshot(),
        }
    }

    fn batch_norms(&mut self) -> [&mut BatchNorm2d; 3] {
        [&mut self.w_gate.bn, &mut self.w_x.bn, &mut self.psi.bn]
    }
}

/// An expanding block: upsample, pad to the skip, then either concatenate [up, skip] (plain,
/// spec §d.1) or gate the skip and concatenate [attended skip, up] (attention, §d.7), then
/// a DoubleConv.
#[derive(Module, Debug)]
pub struct ExpandBlock {
    pub attention: Option<AttentionGate>,
    pub double_conv: DoubleConv,
}

impl ExpandBlock {
    /// The block's output and, for an attention block, ψ.
    fn forward(&self, deep: Tensor<4>, skip: Tensor<4>) -> (Tensor<4>, Option<Tensor<4>>) {
        let up = upsample_to(deep, &skip);
        match &self.attention {
            None => (
                self.double_conv.forward(Tensor::cat(vec![up, skip], 1)),
                None,
            ),
            Some(gate) => {
                let psi = gate.coefficients(up.clone(), skip.clone());
                let c = skip.dims()[1];
                let attended = skip * psi.clone().repeat_dim(1, c);
                let y = self.double_conv.forward(Tensor::cat(vec![attended, up], 1));
                (y, Some(psi))
            }
        }
    }

    fn snapshot(&self) -> Self {
        Self {
            attention: self.attention.as_ref().map(AttentionGate::snapshot),
            double_conv: self.double_conv.snapshot(),
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

/// The U-Net of spec §d.2, with attention gates (§d.7) when its architecture has them.
#[derive(Module, Debug)]
pub struct BurnUNet {
    pub input_block: DoubleConv,
    pub contract_blocks: Vec<DoubleConv>,
    pub bridge: DoubleConv,
    pub expand_blocks: Vec<ExpandBlock>,
    pub sic_feature_map: Head,
    pub sod_feature_map: Head,
    pub floe_feature_map: Head,
    /// `unet_conv_filters`.
    pub filters: Vec<usize>,
    #[module(skip)]
    pub sic: SicHead,
    #[module(skip)]
    pub kind: Kind,
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
/// two row selections and a weighted sum, which have a backward pass on every backend.
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

/// Upsample ×2 (bilinear, align_corners) and zero-pad bottom/right to the skip's size, as the
/// challenge's `expand_padding` does.
fn upsample_to(y: Tensor<4>, skip: &Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = skip.dims();
    let [_, _, dh, dw] = y.dims();
    let up = if dh == 0 || dw == 0 {
        y
    } else if y.device().is_autodiff() && y.device().inner() != Device::flex() {
        bilinear_axis(bilinear_axis(y, 2, 2 * dh), 3, 2 * dw)
    } else {
        interpolate(
            y,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(true)
                .with_output_size([2 * dh, 2 * dw]),
        )
    };
    let [_, _, uh, uw] = up.dims();
    if uh < h || uw < w {
        up.pad((0, w - uw, 0, h - uh), PadMode::Constant(0.0))
    } else {
        up
    }
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

/// Builds the network's parts from PyTorch names: every tensor is asked of `value` once, in
/// the order of [`Architecture::expected`] (so that seeded fresh values do not depend on the
/// code's order of construction).
struct Builder<'a, 'b> {
    value: &'a mut ValueFn<'b>,
    counts: &'a dyn Fn(&str) -> i64,
    device: Device,
}

impl Builder<'_, '_> {
    fn bn(&mut self, p: &str, n: usize) -> BatchNorm2d {
        let device = self.device.clone();
        let mut g = |t: &str| (self.value)(&format!("{p}.{t}"), &[n], 0);
        BatchNorm2d {
            weight: param(g("weight"), [n], &device),
            bias: param(g("bias"), [n], &device),
            running_mean: running(g("running_mean"), n, &device),
            running_var: running(g("running_var"), n, &device),
            training: Param::from_bool(true),
            num_batches_tracked: (self.counts)(&format!("{p}.num_batches_tracked")),
        }
    }

    /// `{p}.{conv}.weight` [cout, cin, 3, 3] and the BatchNorm `{p}.{bn}`.
    fn conv_bn(&mut self, p: &str, conv: &str, bn: &str, cin: usize, cout: usize) -> ConvBn {
        let shape = [cout, cin, 3, 3];
        let w = (self.value)(&format!("{p}.{conv}.weight"), &shape, cin * 9);
        ConvBn {
            conv: param(w, shape, &self.device),
            bn: self.bn(&format!("{p}.{bn}"), cout),
        }
    }

    fn double(&mut self, p: &str, cin: usize, cout: usize) -> DoubleConv {
        let first = self.conv_bn(p, "0", "1", cin, cout);
        let second = self.conv_bn(p, "3", "4", cout, cout);
        DoubleConv { first, second }
    }

    fn gate(&mut self, p: &str, deep: usize, skip: usize, n: usize) -> AttentionGate {
        AttentionGate {
            w_gate: self.conv_bn(&format!("{p}.W_gate"), "0", "1", deep, n),
            w_x: self.conv_bn(&format!("{p}.W_x"), "0", "1", skip, n),
            psi: self.conv_bn(&format!("{p}.psi"), "0", "1", n, 1),
        }
    }

    fn head(&mut self, chart: Chart, n: usize, f0: usize) -> Head {
        let p = head_prefix(chart);
        let w = (self.value)(&format!("{p}.weight"), &[n, f0, 1, 1], f0);
        let b = (self.value)(&format!("{p}.bias"), &[n], f0);
        Head {
            weight: param(w, [n, f0, 1, 1], &self.device),
            bias: param(b, [n], &self.device),
        }
    }
}

/// A flattened tensor with its PyTorch name.
type NamedTensor = (String, Tensor<1>);
/// Names and shapes of the tensors in a flat export, in order.
type Layout = Vec<(String, Vec<usize>)>;

impl BurnUNet {
    fn build(
        arch: &Architecture,
        device: &Device,
        value: &mut ValueFn,
        counts: &dyn Fn(&str) -> i64,
    ) -> Self {
        let f = &arch.filters;
        let l = f.len();
        let mut b = Builder {
            value,
            counts,
            device: device.clone().autodiff(),
        };
        let input_block = b.double("input_block.double_conv", arch.in_channels, f[0]);
        let contract_blocks = (1..l)
            .map(|i| {
                let p = format!("contract_blocks.{}.double_conv.double_conv", i - 1);
                b.double(&p, f[i - 1], f[i])
            })
            .collect();
        let bridge = b.double("bridge.double_conv.double_conv", f[l - 1], f[l - 1]);
        let expand_blocks = arch
            .expand_shapes()
            .into_iter()
            .enumerate()
            .map(|(k, e)| ExpandBlock {
                attention: (arch.kind == Kind::Attention).then(|| {
                    b.gate(
                        &format!("expand_blocks.{k}.attention"),
                        e.deep,
                        e.skip,
                        e.gate,
                    )
                }),
                double_conv: b.double(
                    &format!("expand_blocks.{k}.double_conv.double_conv"),
                    e.deep + e.skip,
                    e.skip,
                ),
            })
            .collect();
        let [n_sic, n_sod, n_floe] = arch.head_outputs;
        BurnUNet {
            input_block,
            contract_blocks,
            bridge,
            expand_blocks,
            sic_feature_map: b.head(Chart::SIC, n_sic, f[0]),
            sod_feature_map: b.head(Chart::SOD, n_sod, f[0]),
            floe_feature_map: b.head(Chart::FLOE, n_floe, f[0]),
            filters: arch.filters.clone(),
            sic: arch.sic,
            kind: arch.kind,
        }
    }

    /// The network of a checkpoint, every tensor, the BatchNorm running statistics and
    /// `num_batches_tracked` as stored. Like every constructor here it lives on
    /// `device.autodiff()`, ready to train; [`Module::valid`] gives the inference copy.
    pub fn from_state_dict(sd: &StateDict, device: &Device) -> Result<Self, ModelError> {
        let arch = Architecture::infer(sd)?;
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
    pub fn new(arch: &Architecture, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut value =
            |name: &str, shape: &[usize], fan_in: usize| fresh_value(&mut rng, name, shape, fan_in);
        Self::build(arch, device, &mut value, &|_| 0)
    }

    /// A network of `arch` initialised from a smaller (or equal) checkpoint the way the fork's
    /// `UNetTrans` does (spec §d.5): the convolution weights of the encoder levels both have
    /// (`input_block`, `contract_blocks.i`), of the decoder levels at the same resolution
    /// (`expand_blocks` counted from the output: the last of each, the one before, ...) and
    /// the head weights are copied where the shapes agree; BatchNorm parameters, running
    /// statistics and biases start fresh, and a 12-channel SIC head is dropped for a regression
    /// head (its shape differs). Attention gates are copied between attention U-Nets and start
    /// fresh in an attention U-Net made from a plain one (the team's transfer learning carried
    /// to attention). Returns the network and the names of the copied tensors.
    pub fn from_smaller(
        small: &StateDict,
        arch: &Architecture,
        seed: u64,
        device: &Device,
    ) -> Result<(Self, Vec<String>), ModelError> {
        let src = Architecture::infer(small)?;
        let (ls, l) = (src.levels(), arch.levels());
        if ls > l {
            return Err(ModelError::Settings(format!(
                "the checkpoint has {ls} levels, more than the {l} of the new network"
            )));
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
        for j in 0..ls {
            for part in ["W_gate", "W_x", "psi"] {
                let name = |k: usize| format!("expand_blocks.{k}.attention.{part}.0.weight");
                map.insert(name(l - 1 - j), name(ls - 1 - j));
            }
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
        let net = Self::build(arch, device, &mut value, &|_| 0);
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
            kind: self.kind,
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
        self.forward_with_attention(x).0
    }

    /// [`Self::forward`] and the attention coefficients ψ `[B, 1, h, w]` of every expanding
    /// block, deepest first (none for a plain U-Net).
    pub fn forward_with_attention(&self, x: Tensor<4>) -> ([Tensor<4>; 3], Vec<Tensor<4>>) {
        let mut skips = vec![self.input_block.forward(x)];
        for block in &self.contract_blocks {
            let pooled = pool(skips.last().expect("skip").clone());
            skips.push(block.forward(pooled));
        }
        let mut y = self
            .bridge
            .forward(pool(skips.last().expect("skip").clone()));
        let mut psis = Vec::new();
        for block in &self.expand_blocks {
            let skip = skips.pop().expect("one skip per expanding block");
            let (out, psi) = block.forward(y, skip);
            y = out;
            psis.extend(psi);
        }
        let heads = [
            self.sic_feature_map.forward(y.clone()),
            self.sod_feature_map.forward(y.clone()),
            self.floe_feature_map.forward(y),
        ];
        (heads, psis)
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
        BurnUNet {
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
                .map(ExpandBlock::snapshot)
                .collect(),
            sic_feature_map: self.sic_feature_map.clone(),
            sod_feature_map: self.sod_feature_map.clone(),
            floe_feature_map: self.floe_feature_map.clone(),
            filters: self.filters.clone(),
            sic: self.sic,
            kind: self.kind,
        }
    }

    /// Counts one training batch in the `num_batches_tracked` of every BatchNorm in training
    /// mode (what PyTorch does in each training-mode forward).
    pub fn count_batch(&mut self) {
        let mut bns: Vec<&mut BatchNorm2d> = Vec::new();
        bns.extend(self.input_block.batch_norms());
        for b in &mut self.contract_blocks {
            bns.extend(b.batch_norms());
        }
        bns.extend(self.bridge.batch_norms());
        for b in &mut self.expand_blocks {
            if let Some(g) = &mut b.attention {
                bns.extend(g.batch_norms());
            }
            bns.extend(b.double_conv.batch_norms());
        }
        for bn in bns {
            bn.count_batch();
        }
    }

    /// Every float tensor by PyTorch name, flattened, and the `num_batches_tracked` buffers.
    fn named(&self) -> (BTreeMap<String, Tensor<1>>, BTreeMap<String, i64>) {
        let mut floats: Vec<NamedTensor> = Vec::new();
        let mut ints = BTreeMap::new();
        let flat = |t: Tensor<4>| {
            let n = t.shape().num_elements();
            t.detach().reshape([n])
        };
        let mut conv_bn = |p: &str, conv: &str, bn: &str, c: &ConvBn| {
            floats.push((format!("{p}.{conv}.weight"), flat(c.conv.val())));
            let b = &c.bn;
            for (t, v) in [
                ("weight", b.weight.val()),
                ("bias", b.bias.val()),
                ("running_mean", b.running_mean.value_sync()),
                ("running_var", b.running_var.value_sync()),
            ] {
                floats.push((format!("{p}.{bn}.{t}"), v.detach()));
            }
            ints.insert(
                format!("{p}.{bn}.num_batches_tracked"),
                b.num_batches_tracked,
            );
        };
        let mut double = |p: &str, d: &DoubleConv| {
            conv_bn(p, "0", "1", &d.first);
            conv_bn(p, "3", "4", &d.second);
        };
        double("input_block.double_conv", &self.input_block);
        for (i, d) in self.contract_blocks.iter().enumerate() {
            double(&format!("contract_blocks.{i}.double_conv.double_conv"), d);
        }
        double("bridge.double_conv.double_conv", &self.bridge);
        for (k, e) in self.expand_blocks.iter().enumerate() {
            double(
                &format!("expand_blocks.{k}.double_conv.double_conv"),
                &e.double_conv,
            );
        }
        for (k, e) in self.expand_blocks.iter().enumerate() {
            if let Some(g) = &e.attention {
                let p = format!("expand_blocks.{k}.attention");
                conv_bn(&format!("{p}.W_gate"), "0", "1", &g.w_gate);
                conv_bn(&format!("{p}.W_x"), "0", "1", &g.w_x);
                conv_bn(&format!("{p}.psi"), "0", "1", &g.psi);
            }
        }
        for (chart, h) in Chart::ALL.iter().zip([
            &self.sic_feature_map,
            &self.sod_feature_map,
            &self.floe_feature_map,
        ]) {
            let p = head_prefix(*chart);
            floats.push((format!("{p}.weight"), flat(h.weight.val())));
            floats.push((format!("{p}.bias"), h.bias.val().detach()));
        }
        (floats.into_iter().collect(), ints)
    }

    /// All tensors in one flat device tensor (one read-back), cut by the layout, which is
    /// [`Architecture::expected`]'s order: PyTorch's.
    fn export_parts(&self) -> (Tensor<1>, Layout, BTreeMap<String, i64>) {
        let (mut floats, ints) = self.named();
        let layout = self.arch().expected();
        let all = Tensor::cat(
            layout
                .iter()
                .map(|(n, _)| {
                    floats
                        .remove(n)
                        .expect("the network has every expected tensor")
                })
                .collect(),
            0,
        );
        (all, layout, ints)
    }

    fn assemble(
        data: TensorData,
        layout: Layout,
        ints: BTreeMap<String, i64>,
    ) -> Result<StateDict, ModelError> {
        let data = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(readback("the weights"))?;
        let mut tensors = BTreeMap::new();
        let mut order = Vec::new();
        let mut at = 0;
        for (name, shape) in layout {
            let n: usize = shape.iter().product();
            let chunk = data
                .get(at..at + n)
                .ok_or_else(|| ModelError::Readback {
                    what: "the weights",
                    detail: "shorter than the network".into(),
                })?
                .to_vec();
            at += n;
            order.push(name.clone());
            // PyTorch registers `num_batches_tracked` right after `running_var`.
            if let Some(p) = name.strip_suffix(".running_var") {
                let nbt = format!("{p}.num_batches_tracked");
                if ints.contains_key(&nbt) {
                    order.push(nbt);
                }
            }
            tensors.insert(name, SdTensor { shape, data: chunk });
        }
        Ok(StateDict {
            tensors,
            integer_buffers: ints.keys().cloned().collect(),
            integer_values: ints,
            epoch: None,
            format: WeightsFormat::PyTorch,
            order,
            metadata: BTreeMap::new(),
        })
    }

    /// The weights as a PyTorch state_dict: exactly the keys, shapes and order of the
    /// challenge's `UNet` or the team's `UNetAttention` (114 entries for pizza_marinara),
    /// `num_batches_tracked` as integer buffers.
    pub async fn to_state_dict(&self) -> Result<StateDict, ModelError> {
        let (all, layout, ints) = self.export_parts();
        let data = all
            .into_data_async()
            .await
            .map_err(readback("the weights"))?;
        Self::assemble(data, layout, ints)
    }
}
