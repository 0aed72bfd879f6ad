//! The same U-Net on burn's wgpu backend: WebGPU in the browser, Vulkan (or Metal, DX12)
//! natively.
//!
//! The network is rebuilt from the CPU [`UNet`]'s folded weights (BatchNorm in eval mode is a
//! per-channel scale and shift, folded into each convolution's weight and bias), so both
//! backends share the loading, checking and folding code, and only the arithmetic differs.

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode,
};
use burn::tensor::{Device, Tensor, TensorData};

use crate::cpu::{ConvBn, Feature};
use crate::unet::{DoubleConv, Expand, Gate, Outputs, UNet};

struct Conv {
    weight: Tensor<4>,
    bias: Tensor<1>,
}

impl Conv {
    fn new(c: &ConvBn, device: &Device) -> Self {
        Conv {
            weight: Tensor::from_data(
                TensorData::new(c.weight.clone(), [c.cout, c.cin, 3, 3]),
                device,
            ),
            bias: Tensor::from_data(TensorData::new(c.shift.clone(), [c.cout]), device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.linear(x))
    }

    /// Convolution and folded BatchNorm without the ReLU (the attention gate's branches).
    fn linear(&self, x: Tensor<4>) -> Tensor<4> {
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        conv2d(x, self.weight.clone(), Some(self.bias.clone()), opts)
    }
}

/// The attention gate of spec §d.7 on the device.
struct GpuGate {
    w_gate: Conv,
    w_x: Conv,
    psi: Conv,
}

impl GpuGate {
    fn new(g: &Gate, device: &Device) -> Self {
        GpuGate {
            w_gate: Conv::new(&g.w_gate, device),
            w_x: Conv::new(&g.w_x, device),
            psi: Conv::new(&g.psi, device),
        }
    }

    /// psi `[1, 1, h, w]` for the gate signal `g` and the skip `x`.
    fn coefficients(&self, g: Tensor<4>, x: Tensor<4>) -> Tensor<4> {
        let a = relu(self.w_gate.linear(g) + self.w_x.linear(x));
        sigmoid(self.psi.linear(a))
    }
}

struct GpuExpand {
    gate: Option<GpuGate>,
    conv: Double,
}

impl GpuExpand {
    fn new(e: &Expand, device: &Device) -> Self {
        GpuExpand {
            gate: e.gate.as_ref().map(|g| GpuGate::new(g, device)),
            conv: Double::new(&e.conv, device),
        }
    }
}

struct Double(Conv, Conv);

impl Double {
    fn new(d: &DoubleConv, device: &Device) -> Self {
        Double(Conv::new(&d.a, device), Conv::new(&d.b, device))
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.1.forward(self.0.forward(x))
    }
}

/// The network's weights on a burn device.
pub struct GpuUNet {
    device: Device,
    input_block: Double,
    contract: Vec<Double>,
    bridge: Double,
    expand: Vec<GpuExpand>,
    heads: Vec<(Tensor<4>, Tensor<1>)>,
}

fn pool(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}

impl GpuUNet {
    pub fn new(net: &UNet, device: &Device) -> Self {
        GpuUNet {
            device: device.clone(),
            input_block: Double::new(&net.input_block, device),
            contract: net
                .contract
                .iter()
                .map(|d| Double::new(d, device))
                .collect(),
            bridge: Double::new(&net.bridge, device),
            expand: net
                .expand
                .iter()
                .map(|e| GpuExpand::new(e, device))
                .collect(),
            heads: net
                .heads
                .iter()
                .map(|h| {
                    let cin = h.weight.len() / h.n;
                    (
                        Tensor::from_data(
                            TensorData::new(h.weight.clone(), [h.n, cin, 1, 1]),
                            device,
                        ),
                        Tensor::from_data(TensorData::new(h.bias.clone(), [h.n]), device),
                    )
                })
                .collect(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Builds the head outputs and the attention coefficients (deepest first; none for a
    /// plain U-Net) as device tensors; reading them back is the caller's choice (sync
    /// natively, async in the browser).
    fn heads(&self, x: &Feature) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
        let mut psis = Vec::new();
        let input = Tensor::<4>::from_data(
            TensorData::new(x.data.clone(), [1, x.c, x.h, x.w]),
            &self.device,
        );
        let mut skips = vec![self.input_block.forward(input)];
        for block in &self.contract {
            let pooled = pool(skips.last().expect("skip").clone());
            skips.push(block.forward(pooled));
        }
        let mut y = self
            .bridge
            .forward(pool(skips.last().expect("skip").clone()));
        for block in &self.expand {
            let skip = skips.pop().expect("one skip per expanding block");
            let [_, _, h, w] = skip.dims();
            let [_, _, dh, dw] = y.dims();
            let up = if dh > 0 && dw > 0 {
                interpolate(
                    y,
                    InterpolateOptions::new(InterpolateMode::Bilinear)
                        .with_align_corners(true)
                        .with_output_size([2 * dh, 2 * dw]),
                )
            } else {
                y
            };
            let [_, _, uh, uw] = up.dims();
            // Zero rows/columns go to the bottom/right, as in the challenge's code.
            let up = if uh < h || uw < w {
                up.pad((0, w - uw, 0, h - uh), PadMode::Constant(0.0))
            } else {
                up
            };
            y = match &block.gate {
                None => block.conv.forward(Tensor::cat(vec![up, skip], 1)),
                Some(gate) => {
                    let psi = gate.coefficients(up.clone(), skip.clone());
                    let c = skip.dims()[1];
                    let attended = skip * psi.clone().repeat_dim(1, c);
                    psis.push(psi);
                    // Skip first: the attention U-Net's order (spec §d.7).
                    block.conv.forward(Tensor::cat(vec![attended, up], 1))
                }
            };
        }
        let heads = self
            .heads
            .iter()
            .map(|(w, b)| {
                conv2d(
                    y.clone(),
                    w.clone(),
                    Some(b.clone()),
                    ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
                )
            })
            .collect();
        (heads, psis)
    }

    /// Forward pass with a blocking read-back (native only: browsers cannot block).
    #[cfg(not(target_family = "wasm"))]
    pub fn forward(&self, x: &Feature) -> Result<Outputs, String> {
        Ok(self.forward_with_attention(x)?.0)
    }

    /// Forward pass with the attention coefficients psi of every expanding block, deepest
    /// first (`[1, h, w]`; empty for a plain U-Net), read back blocking (native only).
    #[cfg(not(target_family = "wasm"))]
    pub fn forward_with_attention(&self, x: &Feature) -> Result<(Outputs, Vec<Feature>), String> {
        let (heads, psis) = self.heads(x);
        let read = |v: Vec<Tensor<4>>| -> Result<Vec<Feature>, String> {
            v.into_iter()
                .map(|t| to_feature(t.dims(), t.into_data()))
                .collect()
        };
        Ok((outputs(read(heads)?)?, read(psis)?))
    }

    /// Forward pass with an asynchronous read-back, for the browser.
    pub async fn forward_async(&self, x: &Feature) -> Result<Outputs, String> {
        let mut outs = Vec::new();
        for t in self.heads(x).0 {
            let dims = t.dims();
            outs.push(to_feature(
                dims,
                t.into_data_async().await.map_err(|e| format!("{e:?}"))?,
            )?);
        }
        outputs(outs)
    }
}

fn to_feature(dims: [usize; 4], data: TensorData) -> Result<Feature, String> {
    let data = data
        .try_into_vec::<f32>()
        .map_err(|e| format!("GPU result is not float32: {e:?}"))?;
    Ok(Feature {
        c: dims[1],
        h: dims[2],
        w: dims[3],
        data,
    })
}

fn outputs(mut v: Vec<Feature>) -> Result<Outputs, String> {
    if v.len() != 3 {
        return Err("the network did not give three heads".into());
    }
    let floe = v.pop().expect("3");
    let sod = v.pop().expect("3");
    let sic = v.pop().expect("3");
    Ok(Outputs { sic, sod, floe })
}
