//! The challenge U-Net with its weights, and its forward pass (spec §d.2), or the team's
//! attention U-Net (spec §d.7): the same network with a gate on every skip connection.

use icelens_core::checkpoint::StateDict;

use crate::arch::{head_prefix, Architecture, Kind};
use crate::cpu::{
    attention_concat, conv1x1, maxpool2, up_concat, upsample_padded, ConvBn, Feature,
};
use crate::error::ModelError;
use icelens_core::Chart;

/// A 3x3 convolution without bias and its BatchNorm, folded, read from `{p}.{conv}.weight`
/// and `{p}.{bn}.*`.
fn conv_bn(
    sd: &StateDict,
    p: &str,
    conv: &str,
    bn: &str,
    cin: usize,
    cout: usize,
) -> Result<ConvBn, ModelError> {
    let t = |k: String| -> Result<&[f32], ModelError> {
        sd.tensors
            .get(&format!("{p}.{k}"))
            .map(|t| t.data.as_slice())
            .ok_or_else(|| ModelError::Missing(format!("{p}.{k}")))
    };
    Ok(ConvBn::fold(
        cin,
        cout,
        t(format!("{conv}.weight"))?,
        t(format!("{bn}.weight"))?,
        t(format!("{bn}.bias"))?,
        t(format!("{bn}.running_mean"))?,
        t(format!("{bn}.running_var"))?,
    ))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DoubleConv {
    pub(crate) a: ConvBn,
    pub(crate) b: ConvBn,
}

impl DoubleConv {
    fn load(sd: &StateDict, p: &str, cin: usize, cout: usize) -> Result<Self, ModelError> {
        Ok(Self {
            a: conv_bn(sd, p, "0", "1", cin, cout)?,
            b: conv_bn(sd, p, "3", "4", cout, cout)?,
        })
    }

    fn forward(&self, x: &Feature) -> Feature {
        self.b.forward_relu(&self.a.forward_relu(x))
    }

    /// [`Self::forward`] that frees its input as soon as the first convolution is done: on a
    /// whole scene the decoder's concatenations are gigabytes each.
    fn forward_owned(&self, x: Feature) -> Feature {
        let a = self.a.forward_relu(&x);
        drop(x);
        self.b.forward_relu(&a)
    }
}

/// The attention gate of an expanding block (spec §d.7), BatchNorms folded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gate {
    pub(crate) w_gate: ConvBn,
    pub(crate) w_x: ConvBn,
    pub(crate) psi: ConvBn,
}

/// An expanding block: upsample, (gate,) concatenate, DoubleConv.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expand {
    pub(crate) gate: Option<Gate>,
    pub(crate) conv: DoubleConv,
}

impl Expand {
    /// The block's output and, for a gated block, its coefficients psi `[1, h, w]`.
    /// Takes its inputs by value so that each is freed as soon as it has been used.
    fn forward(&self, deep: Feature, skip: Feature) -> (Feature, Option<Feature>) {
        match &self.gate {
            None => {
                let cat = up_concat(&deep, &skip);
                drop((deep, skip));
                (self.conv.forward_owned(cat), None)
            }
            Some(g) => {
                let up = upsample_padded(&deep, skip.h, skip.w, 0);
                drop(deep);
                let (cat, psi) = attention_concat(&up, &skip, &g.w_gate, &g.w_x, &g.psi);
                drop((up, skip));
                (self.conv.forward_owned(cat), Some(psi))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    pub(crate) n: usize,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

/// Raw head outputs (logits; one channel for a regression SIC head).
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub sic: Feature,
    pub sod: Feature,
    pub floe: Feature,
}

impl Outputs {
    pub fn get(&self, chart: Chart) -> &Feature {
        match chart {
            Chart::SIC => &self.sic,
            Chart::SOD => &self.sod,
            Chart::FLOE => &self.floe,
        }
    }
}

/// The network, ready for inference.
#[derive(Debug, Clone, PartialEq)]
pub struct UNet {
    pub arch: Architecture,
    pub(crate) input_block: DoubleConv,
    pub(crate) contract: Vec<DoubleConv>,
    pub(crate) bridge: DoubleConv,
    pub(crate) expand: Vec<Expand>,
    pub(crate) heads: Vec<Head>,
}

impl UNet {
    /// Builds the network a state_dict describes; the error lists missing or misshapen tensors.
    pub fn from_state_dict(sd: &StateDict) -> Result<UNet, ModelError> {
        let arch = Architecture::infer(sd)?;
        let f = arch.filters.clone();
        let l = f.len();
        let input_block = DoubleConv::load(sd, "input_block.double_conv", arch.in_channels, f[0])?;
        let contract = (1..l)
            .map(|i| {
                DoubleConv::load(
                    sd,
                    &format!("contract_blocks.{}.double_conv.double_conv", i - 1),
                    f[i - 1],
                    f[i],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bridge = DoubleConv::load(sd, "bridge.double_conv.double_conv", f[l - 1], f[l - 1])?;
        let expand = arch
            .expand_shapes()
            .into_iter()
            .enumerate()
            .map(|(k, e)| {
                let gate = match arch.kind {
                    Kind::Plain => None,
                    Kind::Attention => {
                        let p = format!("expand_blocks.{k}.attention");
                        Some(Gate {
                            w_gate: conv_bn(sd, &format!("{p}.W_gate"), "0", "1", e.deep, e.gate)?,
                            w_x: conv_bn(sd, &format!("{p}.W_x"), "0", "1", e.skip, e.gate)?,
                            psi: conv_bn(sd, &format!("{p}.psi"), "0", "1", e.gate, 1)?,
                        })
                    }
                };
                Ok(Expand {
                    gate,
                    conv: DoubleConv::load(
                        sd,
                        &format!("expand_blocks.{k}.double_conv.double_conv"),
                        e.deep + e.skip,
                        e.skip,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let heads = Chart::ALL
            .iter()
            .zip(arch.head_outputs)
            .map(|(c, n)| {
                let p = head_prefix(*c);
                let get = |k: &str| {
                    sd.tensors
                        .get(&format!("{p}.{k}"))
                        .map(|t| t.data.clone())
                        .ok_or_else(|| ModelError::Missing(format!("{p}.{k}")))
                };
                Ok(Head {
                    n,
                    weight: get("weight")?,
                    bias: get("bias")?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(UNet {
            arch,
            input_block,
            contract,
            bridge,
            expand,
            heads,
        })
    }

    /// The forward pass of one `[24, h, w]` input. Any size works; below 2^levels pixels the
    /// bridge is empty and the output still has the input's size, as in PyTorch.
    pub fn forward(&self, x: &Feature) -> Outputs {
        self.forward_with_attention(x).0
    }

    /// The forward pass, with the attention coefficients psi of every expanding block,
    /// deepest first (`[1, h, w]` at that block's resolution; empty for a plain U-Net).
    pub fn forward_with_attention(&self, x: &Feature) -> (Outputs, Vec<Feature>) {
        let mut psis = Vec::new();
        let mut skips = vec![self.input_block.forward(x)];
        for block in &self.contract {
            let pooled = maxpool2(skips.last().expect("input block output"));
            skips.push(block.forward_owned(pooled));
        }
        let mut y = self
            .bridge
            .forward_owned(maxpool2(skips.last().expect("deepest skip")));
        for block in &self.expand {
            let skip = skips.pop().expect("one skip per expanding block");
            let (out, psi) = block.forward(y, skip);
            y = out;
            psis.extend(psi);
        }
        let head = |h: &Head| conv1x1(&y, h.n, &h.weight, &h.bias);
        let outputs = Outputs {
            sic: head(&self.heads[0]),
            sod: head(&self.heads[1]),
            floe: head(&self.heads[2]),
        };
        (outputs, psis)
    }
}

/// The most memory [`UNet::forward_with_attention`] holds at once on an `h x w` input, in
/// bytes, the input included: the planner's measure of whether a whole scene fits. It walks
/// the forward pass above and keeps the same maps alive at the same moments (skips until
/// their expanding block, a block's inputs until its first convolution), so the two must
/// change together. Each convolution's im2col bands add a few megabytes per thread, counted
/// as a fixed margin.
pub fn forward_peak_bytes(arch: &Architecture, h: usize, w: usize) -> u128 {
    let f = &arch.filters;
    let l = f.len();
    let px = |level: usize| {
        (h.checked_shr(level as u32).unwrap_or(0) as u128)
            * (w.checked_shr(level as u32).unwrap_or(0) as u128)
    };
    let ch = |c: usize| c as u128;
    let mut peak = 0u128;
    let mut at = |held: u128| peak = peak.max(held);
    // The input, held by the caller throughout.
    let mut live = ch(arch.in_channels) * px(0);
    // Input block: both convolutions' outputs at once; the second stays as the first skip.
    at(live + 2 * ch(f[0]) * px(0));
    live += ch(f[0]) * px(0);
    // Contracting blocks and the bridge: pooled map and first output, then both outputs.
    let mut deep = 0;
    for i in 1..=l {
        let (cin, cout) = (f[i - 1], f[(i).min(l - 1)]);
        let pooled = ch(cin) * px(i);
        let out = ch(cout) * px(i);
        at(live + pooled + out);
        at(live + 2 * out);
        if i < l {
            live += out;
        } else {
            deep = out;
        }
    }
    for (k, e) in arch.expand_shapes().into_iter().enumerate() {
        let level = l - 1 - k;
        let p = px(level);
        let skip = ch(e.skip) * p;
        let cat = ch(e.deep + e.skip) * p;
        match arch.kind {
            Kind::Plain => at(live + deep + cat),
            Kind::Attention => {
                let up = ch(e.deep) * p;
                // Both gate branches and psi, then the concatenation beside them.
                at(live + deep + up);
                at(live + up + 2 * ch(e.gate) * p + p);
                at(live + up + 2 * ch(e.gate) * p + p + cat);
                // psi is kept for the caller.
                live += p;
            }
        }
        live -= skip;
        let out = ch(e.skip) * p;
        at(live + cat + out);
        at(live + 2 * out);
        deep = out;
    }
    // The heads, all three alive with the last decoder map.
    at(live + deep + arch.head_outputs.iter().map(|n| ch(*n)).sum::<u128>() * px(0));
    const BANDS: u128 = 64 << 20;
    peak * 4 + BANDS
}
