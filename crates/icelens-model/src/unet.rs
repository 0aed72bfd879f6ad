//! The challenge U-Net with its weights, and its forward pass (spec §d.2).

use icelens_core::checkpoint::StateDict;

use crate::arch::{head_prefix, Architecture};
use crate::cpu::{conv1x1, maxpool2, up_concat, ConvBn, Feature};
use icelens_core::Chart;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DoubleConv {
    pub(crate) a: ConvBn,
    pub(crate) b: ConvBn,
}

impl DoubleConv {
    fn load(sd: &StateDict, p: &str, cin: usize, cout: usize) -> Result<Self, String> {
        let t = |k: &str| -> Result<&[f32], String> {
            sd.tensors
                .get(&format!("{p}.{k}"))
                .map(|t| t.data.as_slice())
                .ok_or_else(|| format!("`{p}.{k}` is missing"))
        };
        let conv = |i: &str, bn: &str, cin: usize| -> Result<ConvBn, String> {
            Ok(ConvBn::fold(
                cin,
                cout,
                t(&format!("{i}.weight"))?,
                t(&format!("{bn}.weight"))?,
                t(&format!("{bn}.bias"))?,
                t(&format!("{bn}.running_mean"))?,
                t(&format!("{bn}.running_var"))?,
            ))
        };
        Ok(Self {
            a: conv("0", "1", cin)?,
            b: conv("3", "4", cout)?,
        })
    }

    fn forward(&self, x: &Feature) -> Feature {
        self.b.forward_relu(&self.a.forward_relu(x))
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
    pub(crate) expand: Vec<DoubleConv>,
    pub(crate) heads: Vec<Head>,
}

impl UNet {
    /// Builds the network a state_dict describes; the error lists missing or misshapen tensors.
    pub fn from_state_dict(sd: &StateDict) -> Result<UNet, String> {
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
            .expand_channels()
            .into_iter()
            .enumerate()
            .map(|(k, (cin, cout))| {
                DoubleConv::load(
                    sd,
                    &format!("expand_blocks.{k}.double_conv.double_conv"),
                    cin,
                    cout,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let heads = Chart::ALL
            .iter()
            .zip(arch.head_outputs)
            .map(|(c, n)| {
                let p = head_prefix(*c);
                let get = |k: &str| {
                    sd.tensors
                        .get(&format!("{p}.{k}"))
                        .map(|t| t.data.clone())
                        .ok_or_else(|| format!("`{p}.{k}` is missing"))
                };
                Ok(Head {
                    n,
                    weight: get("weight")?,
                    bias: get("bias")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
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
        let mut skips = vec![self.input_block.forward(x)];
        for block in &self.contract {
            let pooled = maxpool2(skips.last().expect("input block output"));
            skips.push(block.forward(&pooled));
        }
        let mut y = self
            .bridge
            .forward(&maxpool2(skips.last().expect("deepest skip")));
        for block in &self.expand {
            let skip = skips.pop().expect("one skip per expanding block");
            y = block.forward(&up_concat(&y, &skip));
        }
        let head = |h: &Head| conv1x1(&y, h.n, &h.weight, &h.bias);
        Outputs {
            sic: head(&self.heads[0]),
            sod: head(&self.heads[1]),
            floe: head(&self.heads[2]),
        }
    }
}
