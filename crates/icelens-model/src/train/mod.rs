//! Training and fine-tuning the challenge U-Net on burn's autodiff (spec §b.4, §d, §d.5).
//!
//! The network is [`BurnUNet`] ([`crate::net`]), plain or with attention gates, on the autodiff
//! device; it exports PyTorch state_dicts with the keys and order the notebooks load.
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
//! Differences from the challenge's training, on purpose:
//! - float32 throughout (the starter kit trains under `torch.cuda.amp.autocast`);
//! - patches are pre-sampled ([`crate::sample_patches`]) and batches drawn from them without
//!   replacement, where the starter kit draws a fresh random crop for every item;
//! - the 2 km channels of a patch are those of the inference-time input
//!   ([`Scene::input_window`]), not the training loader's 11-cell crop stretched to 256 px
//!   (spec §b.4's quirk, which misregisters AMSR2/ERA5 by up to one cell): the model is trained
//!   on exactly what icelens later runs it on.
//!
//! - [`patches`]: the examples a run learns from (which scenes, which part of them, how often
//!   each is drawn) and the split into training and validation;
//! - [`losses`]: the challenge's per-chart losses;
//! - [`trainer`]: the recipe, the optimiser and the step-by-step [`Trainer`].

pub mod losses;
pub mod patches;
pub mod trainer;

pub use losses::*;
pub use patches::*;
pub use trainer::*;

pub use crate::net::{BurnUNet, Freeze};
pub(crate) use crate::rng::SplitMix64;
