//! `icelens finetune`: trains a U-Net on labelled scenes, from a checkpoint (transfer
//! learning), from scratch, or from a smaller model, with the same code the page uses.
//!
//! It runs on burn's wgpu backend (a real GPU through Vulkan/Metal/DX12, or Mesa's software
//! Vulkan where there is none) or, with `--device cpu`, on burn's flex CPU backend, with
//! burn's autodiff and Adam; the best-validation weights are
//! written as `.pt` (PyTorch's `torch.load` and the challenge's `UNet.load_state_dict` take
//! it), `.safetensors` or `.bpk`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use icelens_core::dataset::atlas_from_json;
use std::time::Instant;

use icelens_core::checkpoint::{load_state_dict, write_burnpack, write_safetensors, write_torch};
use icelens_core::Scene;
use icelens_model::block_on;
use icelens_model::burn::tensor::Device;
use std::sync::Arc;

use icelens_core::breakdown::{condition_mask, Condition, Dimension};
use icelens_core::input::Window;
use icelens_model::train::{Freeze, TrainConfig, TrainEvent, Trainer};
use icelens_model::{balance_weights, prepare_from, share_weights, Area, SicHead, Source};
use icelens_model::{Architecture, BurnUNet, Kind};

use crate::inputs::load;

/// What `finetune` was asked for.
pub struct Request<'a> {
    pub model: Option<&'a Path>,
    pub filters: Option<&'a str>,
    pub regression: bool,
    /// Attention gates in a new network (with `filters`).
    pub attention: bool,
    pub scenes: &'a [PathBuf],
    pub out: &'a Path,
    pub patches: usize,
    pub config: TrainConfig,
    pub notes: &'a [(String, String)],
    pub subset: Subset,
    pub device: Backend,
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's wgpu backend: a GPU through Vulkan, Metal or DX12 (Mesa's software Vulkan
    /// where there is none).
    Gpu,
    /// burn's flex backend: pure Rust on the CPU, the same code the page trains with when the
    /// browser has no WebGPU.
    Cpu,
}

pub fn parse_device(s: &str) -> Result<Backend, String> {
    match s {
        "gpu" => Ok(Backend::Gpu),
        "cpu" => Ok(Backend::Cpu),
        _ => Err(format!("--device {s}: use gpu or cpu")),
    }
}

/// What part of the scenes patches come from, and how scenes are weighted (the page's
/// choices, from the command line).
#[derive(Debug, Default)]
pub struct Subset {
    pub area: Option<Window>,
    pub condition: Option<Condition>,
    pub balance: Option<Dimension>,
    /// With `balance`: the share each group is drawn with (the test set's, from an atlas),
    /// and the atlas file's name.
    pub shares: Option<(BTreeMap<String, f64>, String)>,
}

impl Subset {
    pub fn parse(
        area: Option<&str>,
        condition: Option<&str>,
        balance: Option<&str>,
        weights_from: Option<&Path>,
    ) -> Result<Subset, String> {
        let area = area
            .map(|a| {
                let v: Vec<usize> = a
                    .split(',')
                    .map(|x| x.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--area {a}: expected ROW,COL,HEIGHT,WIDTH"))?;
                match v[..] {
                    [r, c, h, w] if h > 0 && w > 0 => Ok(Window::new(r, c, h, w)),
                    _ => Err(format!(
                        "--area {a}: expected ROW,COL,HEIGHT,WIDTH, not empty"
                    )),
                }
            })
            .transpose()?;
        let condition = condition
            .map(|c| {
                let (d, g) = c.split_once('=').ok_or_else(|| {
                    format!("--condition {c}: expected DIMENSION=GROUP, e.g. land=0-2km")
                })?;
                let d: Dimension = d
                    .trim()
                    .parse()
                    .map_err(|_| format!("--condition {c}: unknown dimension {d}"))?;
                Ok::<_, String>(Condition::new(d, g.trim()))
            })
            .transpose()?;
        let balance = balance
            .map(|b| {
                b.parse::<Dimension>()
                    .map_err(|_| format!("--balance {b}: unknown dimension"))
            })
            .transpose()?;
        let shares = match (weights_from, balance) {
            (None, _) => None,
            (Some(path), None) => {
                return Err(format!(
                    "--weights-from {}: give --balance DIMENSION too (whose groups to weight)",
                    path.display()
                ))
            }
            (Some(path), Some(d)) => Some((test_shares(path, d)?, path.display().to_string())),
        };
        Ok(Subset {
            area,
            condition,
            balance,
            shares,
        })
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = &self.area {
            parts.push(format!(
                "inside rows {}..{}, columns {}..{}",
                w.row,
                w.row + w.height,
                w.col,
                w.col + w.width
            ));
        }
        if let Some(c) = &self.condition {
            parts.push(format!("centred on {c}"));
        }
        match (self.balance, &self.shares) {
            (Some(b), Some((_, file))) => parts.push(format!(
                "{} groups drawn with the test shares of {file}",
                b.key()
            )),
            (Some(b), None) => parts.push(format!("balanced by {}", b.key())),
            _ => {}
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }
}

/// The test-set share of every group of `dimension` in an atlas (`icelens dataset --json`).
fn test_shares(path: &Path, dimension: Dimension) -> Result<BTreeMap<String, f64>, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    let atlas = atlas_from_json(&name, &bytes).map_err(|e| e.to_string())?;
    atlas
        .test_shares(&name, dimension)
        .map_err(|e| format!("--weights-from {e}"))
}

pub fn parse_freeze(s: &str) -> Result<Freeze, String> {
    match s {
        "none" => Ok(Freeze::Nothing),
        "encoder" => Ok(Freeze::Encoder),
        "encoder+bridge" => Ok(Freeze::EncoderAndBridge),
        _ => Err(format!("--freeze {s}: use none, encoder or encoder+bridge")),
    }
}

fn device(backend: Backend) -> Result<Device, String> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        Backend::Gpu => Device::wgpu_options()
            .init()
            .map_err(|e| format!("no wgpu adapter to train on ({e:?}); install a Vulkan driver (Mesa's lavapipe works without a GPU), or use --device cpu")),
    }
}

pub fn finetune(req: &Request) -> Result<(), String> {
    let ext = req
        .out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !matches!(ext.as_str(), "pt" | "pth" | "safetensors" | "bpk") {
        return Err(format!(
            "{}: unknown model format; use .pt, .safetensors or .bpk",
            req.out.display()
        ));
    }
    let mut scenes: Vec<Scene> = Vec::new();
    for path in req.scenes {
        match load(path) {
            Ok(s) if s.has_charts() => scenes.push(s),
            Ok(s) => eprintln!(
                "error: {}: has no ice charts and cannot be trained on",
                s.file
            ),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if scenes.is_empty() {
        return Err("no labelled scene to train on".into());
    }
    let device = device(req.device)?;
    let sic = if req.regression {
        SicHead::Regression
    } else {
        SicHead::Classification
    };
    let kind = if req.attention {
        Kind::Attention
    } else {
        Kind::Plain
    };
    if req.attention && req.filters.is_none() {
        return Err(
            "--attention builds a new network: give --filters too (with --model, its levels \
             are copied and the gates start fresh)"
                .into(),
        );
    }
    let (model, start) = match (req.model, req.filters) {
        (Some(path), None) => {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
            let sd = load_state_dict(&name, &bytes).map_err(|e| e.to_string())?;
            let m = BurnUNet::from_state_dict(&sd, &device).map_err(|e| format!("{name}: {e}"))?;
            (m, format!("from {name}"))
        }
        (Some(path), Some(f)) => {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
            let sd = load_state_dict(&name, &bytes).map_err(|e| e.to_string())?;
            let filters = Architecture::parse_filters(f)?;
            let arch = Architecture::fresh(&filters, sic, kind)?;
            let (m, copied) = BurnUNet::from_smaller(&sd, &arch, req.config.seed, &device)
                .map_err(|e| format!("{name}: {e}"))?;
            (
                m,
                format!("filters {filters:?}, {} tensors from {name}", copied.len()),
            )
        }
        (None, Some(f)) => {
            let filters = Architecture::parse_filters(f)?;
            let m = BurnUNet::new(
                &Architecture::fresh(&filters, sic, kind)?,
                req.config.seed,
                &device,
            );
            (m, format!("from scratch, filters {filters:?}"))
        }
        (None, None) => {
            return Err(
                "give --model (transfer), --filters (from scratch) or both (from a smaller model)"
                    .into(),
            )
        }
    };
    let model = model.freeze_encoder(req.config.freeze);
    let refs: Vec<&Scene> = scenes.iter().collect();
    let weights = match (req.subset.balance, &req.subset.shares) {
        (Some(d), Some((shares, file))) => {
            share_weights(&refs, d, shares).map_err(|e| format!("--weights-from {file}: {e}"))?
        }
        (Some(d), None) => balance_weights(&refs, d)?,
        (None, _) => vec![1.0; refs.len()],
    };
    let sources: Vec<Source> = refs
        .iter()
        .zip(weights)
        .map(|(s, weight)| Source {
            scene: s,
            area: match (&req.subset.condition, &req.subset.area) {
                (Some(c), _) => Area::Pixels(Arc::new(condition_mask(s, c))),
                (None, Some(w)) => Area::Rect(*w),
                (None, None) => Area::Whole,
            },
            weight,
        })
        .collect();
    if req.subset.condition.is_some() && req.subset.area.is_some() {
        return Err("give --area or --condition, not both".into());
    }
    if let Some(c) = &req.subset.condition {
        let none = sources
            .iter()
            .all(|s| matches!(&s.area, Area::Pixels(m) if !m.iter().any(|p| *p)));
        if none {
            return Err(format!(
                "--condition {c}: no pixel of the scenes belongs to it"
            ));
        }
    }
    let (train, val) = prepare_from(&sources, req.patches, &req.config)?;
    eprintln!(
        "training {start}: {} training and {} validation patches of {} px from {} scenes{}",
        train.len(),
        val.len(),
        req.config.patch_size,
        scenes.len(),
        req.subset.describe()
    );
    let mut trainer = Trainer::new(model, req.config.clone(), train, val)?;
    // The starting point the epochs are measured against (the page's "before" row).
    if let Some(b) = block_on(trainer.baseline())? {
        eprintln!(
            "  before: validation {:.6} (SIC {:.3}, SOD {:.3}, FLOE {:.3}), combined score {:.1}",
            b.loss, b.chart_losses[0], b.chart_losses[1], b.chart_losses[2], b.scores.combined
        );
    }
    let started = Instant::now();
    trainer.run(|event| {
        match event {
            TrainEvent::Step(s) => eprint!(
                "\r  epoch {} step {}: loss {:.4} (SIC {:.3}, SOD {:.3}, FLOE {:.3})   ",
                s.epoch + 1,
                s.step,
                s.loss,
                s.chart_losses[0],
                s.chart_losses[1],
                s.chart_losses[2]
            ),
            TrainEvent::Validation(v) => eprintln!(
                "\r  epoch {}: train {:.4}, validation {:.4} (SIC {:.3}, SOD {:.3}, FLOE {:.3}){} · {:.0} s",
                v.epoch + 1,
                v.train_loss,
                v.loss,
                v.chart_losses[0],
                v.chart_losses[1],
                v.chart_losses[2],
                if v.improved { " best" } else { "" },
                started.elapsed().as_secs_f64()
            ),
        }
        true
    })?;
    let state = trainer.state().clone();
    let best = trainer.into_best_model();
    let sd = block_on(best.to_state_dict())?;
    let epoch = state.best_epoch.map(|e| e as i64);
    let mut meta: Vec<(&str, &str)> = vec![("trained_with", "icelens finetune")];
    for (k, v) in req.notes {
        meta.push((k, v));
    }
    let bytes = match ext.as_str() {
        "pt" | "pth" => write_torch(&sd, epoch),
        "safetensors" => write_safetensors(&sd),
        _ => write_burnpack(&sd, &meta),
    };
    std::fs::write(req.out, bytes)
        .map_err(|e| format!("{}: cannot be written ({e})", req.out.display()))?;
    eprintln!(
        "wrote {} (best validation {:.4} at epoch {}{})",
        req.out.display(),
        state.best_loss.unwrap_or(f32::NAN),
        state.best_epoch.map_or(0, |e| e + 1),
        if state.stopped_early {
            ", stopped early"
        } else {
            ""
        }
    );
    Ok(())
}
