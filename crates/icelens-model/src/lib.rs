//! The AI4Arctic challenge U-Net (spec §d) for icelens.
//!
//! - [`Architecture::infer`] reads levels, filters and heads from a state_dict's names and
//!   shapes, so a checkpoint is all a user needs to bring.
//! - [`UNet`] holds the weights; [`UNet::forward`] is an exact float32 CPU implementation
//!   (im2col + SIMD GEMM, BatchNorm in eval mode folded into the convolutions).
//! - [`infer_scene`] runs a whole scene, whole or in tiles with a halo, with progress and
//!   cancellation, into per-chart class maps and confidences.
//! - [`net`] is the same network once more as a burn module ([`BurnUNet`]), plain or with
//!   attention gates: it runs on the GPU ([`gpu`]) and trains ([`train`]: [`Trainer`]) and
//!   exports PyTorch state_dicts.

pub mod arch;
pub mod cpu;
mod error;
mod flex_conv;
pub mod gpu;
pub mod infer;
pub mod net;
mod par;
mod rng;
pub mod train;
pub mod unet;

/// The burn version the GPU path is built on, for callers that pick a device.
pub use burn;

/// Waits on this thread for one of this crate's async read-backs (a training step, a
/// validation, the weights). Each read-back is written once, async, because a browser cannot
/// block on the GPU; the command line and the tests wait for it here (natively only).
#[cfg(not(target_family = "wasm"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    burn::tensor::read_sync(f)
}

pub use arch::{Architecture, Kind, SicHead};
pub use error::ModelError;
pub use infer::{infer_scene, predict_scene, Forward, InferError, InferOptions, Prediction};
pub use net::BurnUNet;
pub use train::{
    balance_weights, prepare_from, prepare_patches, sample_from, sample_patches, share_weights,
    Area, Source,
};
pub use train::{
    split_validation, Freeze, Patch, StepReport, TrainConfig, TrainEvent, TrainState, Trainer,
    ValReport,
};
pub use unet::{forward_peak_bytes, Outputs, UNet};
