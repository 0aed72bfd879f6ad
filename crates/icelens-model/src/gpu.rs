//! Inference on burn's wgpu backend: WebGPU in the browser, Vulkan (or Metal, DX12) natively.
//!
//! The network is [`BurnUNet`], the same burn definition that trains, on a device without
//! autodiff (BatchNorm on its running statistics, burn's own bilinear `interpolate`). This
//! module adds what inference needs around it: one input tile in, head outputs and the
//! attention coefficients read back as [`Feature`]s, blocking natively and asynchronously in
//! the browser.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use icelens_core::checkpoint::StateDict;

use crate::arch::Architecture;
use crate::cpu::Feature;
use crate::error::{readback, ModelError};
use crate::infer::{Forward, InferError};
use crate::net::BurnUNet;
use crate::unet::Outputs;

/// A checkpoint's network on a burn device, for inference.
pub struct GpuUNet {
    device: Device,
    net: BurnUNet,
}

/// The page's WebGPU path in the one tile loop ([`crate::predict_scene`]).
impl Forward for GpuUNet {
    fn architecture(&self) -> Architecture {
        self.net.arch()
    }

    async fn run(&self, x: &Feature) -> Result<(Outputs, Vec<Feature>), InferError> {
        Ok(self.forward_with_attention(x).await?)
    }
}

impl GpuUNet {
    /// The network of `sd` on `device`, without autodiff: inference keeps no graph.
    pub fn new(sd: &StateDict, device: &Device) -> Result<Self, ModelError> {
        let net = BurnUNet::from_state_dict(sd, device)?.valid();
        Ok(GpuUNet {
            device: net.device(),
            net,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Builds the head outputs and the attention coefficients (deepest first; none for a
    /// plain U-Net) as device tensors; reading them back is the caller's choice (sync
    /// natively, async in the browser).
    fn heads(&self, x: &Feature) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
        let input = Tensor::<4>::from_data(
            TensorData::new(x.data.clone(), [1, x.c, x.h, x.w]),
            &self.device,
        );
        let (heads, psis) = self.net.forward_with_attention(input);
        (heads.into(), psis)
    }

    /// The three heads of a tile (read back asynchronously, as a browser must; natively,
    /// wait with [`crate::block_on`]).
    pub async fn forward(&self, x: &Feature) -> Result<Outputs, ModelError> {
        Ok(self.forward_with_attention(x).await?.0)
    }

    /// The heads and the attention coefficients psi of every expanding block, deepest first
    /// (`[1, h, w]`; empty for a plain U-Net).
    pub async fn forward_with_attention(
        &self,
        x: &Feature,
    ) -> Result<(Outputs, Vec<Feature>), ModelError> {
        let (heads, psis) = self.heads(x);
        let mut read = Vec::new();
        for t in heads.into_iter().chain(psis) {
            let dims = t.dims();
            let data = t
                .into_data_async()
                .await
                .map_err(readback("the network's outputs"))?;
            read.push(to_feature(dims, data)?);
        }
        let psis = read.split_off(3);
        Ok((outputs(read)?, psis))
    }
}

fn to_feature(dims: [usize; 4], data: TensorData) -> Result<Feature, ModelError> {
    let data = data
        .try_into_vec::<f32>()
        .map_err(readback("the network's outputs as float32"))?;
    Ok(Feature {
        c: dims[1],
        h: dims[2],
        w: dims[3],
        data,
    })
}

fn outputs(mut v: Vec<Feature>) -> Result<Outputs, ModelError> {
    if v.len() != 3 {
        return Err(ModelError::Readback {
            what: "the network's heads",
            detail: format!("{} heads, not three", v.len()),
        });
    }
    let floe = v.pop().expect("3");
    let sod = v.pop().expect("3");
    let sic = v.pop().expect("3");
    Ok(Outputs { sic, sod, floe })
}
