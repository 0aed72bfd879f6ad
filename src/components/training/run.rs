//! One fine-tuning run, from drawing the patches to the fine-tuned model, and what the panel
//! shows of it: the form's settings, the phase, the live history of losses and validations.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use icelens_core::breakdown::Dimension;
use icelens_core::input::Window;
use icelens_core::Scene;
use icelens_model::burn::tensor::Device;
use icelens_model::train::{Baseline, TrainConfig, Trainer, ValReport};
use icelens_model::{prepare_from, Architecture, Area, BurnUNet, Kind, SicHead, Source};
use leptos::prelude::*;

use crate::inference::{self, Model};

/// Patch pixels × 24 channels × 4 bytes above which a run is refused: the patches live in
/// wasm memory next to the scenes.
pub(super) const MAX_PATCH_BYTES: usize = 512 * 1024 * 1024;

/// What the patches are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AreaChoice {
    Scenes,
    View,
    Condition,
}

/// Where the training arithmetic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrainOn {
    /// burn's wgpu backend on the browser's WebGPU: asynchronous, the page stays fluid.
    WebGpu,
    /// burn's flex backend in wasm: works in every browser, but each step holds the page's
    /// thread while it runs.
    Cpu,
}

/// What the network starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    Loaded,
    Scratch,
    Smaller,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Phase {
    Idle,
    Preparing(String),
    Running,
    Paused,
    Done,
    Cancelled,
    Failed(String),
}

impl Phase {
    pub(super) fn busy(&self) -> bool {
        matches!(self, Phase::Preparing(_) | Phase::Running | Phase::Paused)
    }
}

/// The losses and validations of the run on screen.
#[derive(Debug, Clone, Default)]
pub(super) struct History {
    pub(super) steps: Vec<(usize, f32)>,
    /// Validations with the step count they came after.
    pub(super) epochs: Vec<(usize, ValReport)>,
    pub(super) before: Option<Baseline>,
    pub(super) total_steps: usize,
    pub(super) started: f64,
    /// Wall-clock seconds of every training step.
    pub(super) step_seconds: Vec<f64>,
    pub(super) patches: (usize, usize),
    /// Each chosen scene's share of the draws (its sampling weight over the sum).
    pub(super) draws: Vec<(String, f64)>,
    /// With "the area in view": the scene (its id) and the rectangle the patches came from.
    pub(super) area: Option<(String, Window)>,
}

impl History {
    /// Mean seconds a step, leaving out the first (it compiles the GPU kernels) when there
    /// are others.
    pub(super) fn mean_step_seconds(&self) -> Option<f64> {
        let s = match self.step_seconds.len() {
            0 => return None,
            1 => &self.step_seconds[..],
            _ => &self.step_seconds[1..],
        };
        Some(s.iter().sum::<f64>() / s.len() as f64)
    }
}

/// A finished run: the original model, the fine-tuned one and the scenes it learnt from.
#[derive(Clone)]
pub(super) struct Outcome {
    pub(super) original: String,
    pub(super) tuned: Arc<Model>,
    pub(super) scenes: Vec<String>,
}

/// The form, read when a run starts.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) area: AreaChoice,
    pub(super) start: Start,
    pub(super) filters: String,
    pub(super) regression: bool,
    /// Attention gates in a new network (scratch or grown; gates start fresh).
    pub(super) attention: bool,
    pub(super) patches: usize,
    pub(super) config: TrainConfig,
    pub(super) balance: Option<Dimension>,
    /// With `balance`: the atlas's test share of every group (and the atlas's source), to
    /// draw groups with instead of equally.
    pub(super) shares: Option<(String, BTreeMap<String, f64>)>,
}

pub(super) fn unique_name(base: &str, taken: &[Arc<Model>]) -> String {
    let stem = base
        .trim_end_matches(".pt")
        .trim_end_matches(".pth")
        .trim_end_matches(".safetensors")
        .trim_end_matches(".bpk");
    let mut name = format!("{stem} fine-tuned");
    let mut k = 2;
    while taken.iter().any(|m| m.name == name) {
        name = format!("{stem} fine-tuned {k}");
        k += 1;
    }
    name
}

pub(super) fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what}: \"{s}\" is not a valid number"))
}

/// What a run learns from, gathered from the form and the page when it starts.
pub(super) struct Job {
    pub(super) settings: Settings,
    /// The model fine-tuned (or grown), if the run does not start from scratch.
    pub(super) base: Option<Arc<Model>>,
    pub(super) device: Device,
    pub(super) chosen: Vec<Arc<Scene>>,
    /// Where in each chosen scene patches may be drawn.
    pub(super) areas: Vec<Area>,
    /// Each chosen scene's sampling weight.
    pub(super) weights: Vec<f64>,
    /// The page's models, for a name the fine-tuned one does not share.
    pub(super) models: RwSignal<Vec<Arc<Model>>>,
}

/// What the panel watches and the buttons set while a run goes.
pub(super) struct Live {
    pub(super) history: RwSignal<History>,
    pub(super) phase: RwSignal<Phase>,
    pub(super) paused: Rc<Cell<bool>>,
    pub(super) cancelled: Rc<Cell<bool>>,
}

/// Trains: draws the patches, validates the starting model, steps (yielding to the browser
/// after each, waiting while paused) and validates after every epoch until done or cancelled;
/// then the best epoch's weights become a model of the page. `None` when no epoch finished.
pub(super) async fn train(job: Job, live: Live) -> Result<Option<Outcome>, String> {
    let Job {
        settings,
        base,
        device,
        chosen,
        areas,
        weights,
        models,
    } = job;
    let Live {
        history,
        phase,
        paused,
        cancelled,
    } = live;
    let sources: Vec<Source> = chosen
        .iter()
        .zip(areas)
        .zip(&weights)
        .map(|((s, area), w)| Source {
            scene: s.as_ref(),
            area,
            weight: *w,
        })
        .collect();
    let (train, val) = prepare_from(&sources, settings.patches, &settings.config)?;
    history.update(|h| h.patches = (train.len(), val.len()));
    let sic = if settings.regression {
        SicHead::Regression
    } else {
        SicHead::Classification
    };
    let kind = if settings.attention {
        Kind::Attention
    } else {
        Kind::Plain
    };
    let seed = settings.config.seed;
    let net = match (settings.start, &base) {
        (Start::Loaded, Some(m)) => BurnUNet::from_state_dict(&m.state, &device)?,
        (Start::Smaller, Some(m)) => {
            let f = Architecture::parse_filters(&settings.filters)?;
            let arch = Architecture::fresh(&f, sic, kind)?;
            BurnUNet::from_smaller(&m.state, &arch, seed, &device)?.0
        }
        _ => {
            let f = Architecture::parse_filters(&settings.filters)?;
            BurnUNet::new(&Architecture::fresh(&f, sic, kind)?, seed, &device)
        }
    };
    let mut trainer = Trainer::new(net, settings.config.clone(), train, val)?;
    phase.set(Phase::Preparing("validating the starting model".into()));
    inference::yield_to_browser().await;
    let before = trainer.baseline().await?;
    history.update(|h| h.before = before);
    phase.set(Phase::Running);
    while !trainer.finished() && !cancelled.get() {
        while paused.get() && !cancelled.get() {
            gloo_timers::future::TimeoutFuture::new(150).await;
        }
        if cancelled.get() {
            break;
        }
        if trainer.epoch_done() {
            let v = trainer.validate().await?;
            let at = trainer.state().step;
            history.update(|h| h.epochs.push((at, v)));
        } else {
            let t0 = js_sys::Date::now();
            let s = trainer.step().await?;
            let secs = (js_sys::Date::now() - t0) / 1000.0;
            history.update(|h| {
                h.steps.push((s.step, s.loss));
                h.step_seconds.push(secs);
            });
        }
        inference::yield_to_browser().await;
    }
    let state = trainer.state().clone();
    let Some(best_epoch) = state.best_epoch else {
        return Ok::<_, String>(None);
    };
    let mut sd = trainer.best_model().to_state_dict().await?;
    sd.epoch = Some(best_epoch as i64 + 1);
    let origin = match (&settings.start, &base) {
        (Start::Scratch, _) | (_, None) => format!("from scratch, filters {}", settings.filters),
        (Start::Smaller, Some(m)) => {
            format!("from {} grown to filters {}", m.name, settings.filters)
        }
        (Start::Loaded, Some(m)) => format!("from {}", m.name),
    };
    sd.metadata.insert(
            "trained_with".into(),
            format!(
                "icelens page: fine-tuned {origin} on {} ({} patches of {} px), best validation loss {:.4} at epoch {}",
                chosen.iter().map(|s| s.meta.scene.as_str()).collect::<Vec<_>>().join(", "),
                settings.patches,
                settings.config.patch_size,
                state.best_loss.unwrap_or(f32::NAN),
                best_epoch + 1
            ),
        );
    let name = models
        .with_untracked(|v| unique_name(base.as_ref().map_or("icelens", |m| m.name.as_str()), v));
    let tuned = Arc::new(inference::model_from_state(&name, sd)?);
    Ok(Some(Outcome {
        original: base.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
        tuned,
        scenes: chosen.iter().map(|s| s.file.clone()).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use icelens_model::block_on;

    fn model(name: &str) -> Arc<Model> {
        let arch = Architecture::fresh(&[2], SicHead::Classification, Kind::Plain).unwrap();
        let net = BurnUNet::new(&arch, 1, &Device::flex());
        let sd = block_on(net.to_state_dict()).unwrap();
        Arc::new(crate::model::model_from_state(name, sd).unwrap())
    }

    #[test]
    fn a_fine_tuned_model_gets_a_name_of_its_own() {
        assert_eq!(
            unique_name("icelens-demo.bpk", &[]),
            "icelens-demo fine-tuned"
        );
        assert_eq!(unique_name("m.pth", &[]), "m fine-tuned");
        let taken = [model("m fine-tuned"), model("m fine-tuned 2")];
        assert_eq!(unique_name("m.pt", &taken), "m fine-tuned 3");
    }

    #[test]
    fn the_step_time_leaves_out_the_first_step_when_there_are_others() {
        let mut h = History::default();
        assert_eq!(h.mean_step_seconds(), None);
        h.step_seconds = vec![5.0];
        assert_eq!(h.mean_step_seconds(), Some(5.0));
        h.step_seconds = vec![5.0, 1.0, 2.0];
        assert_eq!(h.mean_step_seconds(), Some(1.5));
    }

    #[test]
    fn form_numbers_are_parsed_or_named() {
        assert_eq!(num::<usize>(" 12 ", "patches"), Ok(12));
        assert_eq!(
            num::<f64>("1e-3x", "learning rate"),
            Err("learning rate: \"1e-3x\" is not a valid number".into())
        );
    }
}
