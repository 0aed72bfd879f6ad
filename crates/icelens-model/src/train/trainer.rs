//! The recipe ([`TrainConfig`]), Adam, and the step-by-step [`Trainer`] with its reports.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use icelens_core::input::N_INPUT;
use icelens_core::metrics::{Confusion, Scores};

use super::losses::*;
use super::patches::Patch;
use super::SplitMix64;
use crate::arch::SicHead;
use crate::error::{readback, ModelError};
use crate::net::{BurnUNet, Freeze};

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
    /// Side of the training patches (256), for [`crate::prepare_patches`].
    pub patch_size: usize,
    /// Share of the data held out for validation, for [`crate::prepare_patches`].
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
    model: BurnUNet,
    best: Option<BurnUNet>,
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

fn check_patches(patches: &[Patch], what: &str) -> Result<Option<(usize, usize)>, ModelError> {
    let Some(first) = patches.first() else {
        return Ok(None);
    };
    let (h, w) = (first.height, first.width);
    for p in patches {
        if (p.height, p.width) != (h, w)
            || p.x.len() != N_INPUT * h * w
            || p.y.iter().any(|c| c.len() != h * w)
        {
            return Err(ModelError::Data(format!(
                "{what} patches must all be {h} x {w} with 24 input channels and three charts"
            )));
        }
    }
    Ok(Some((h, w)))
}

impl Trainer {
    /// Prepares a run. The model is put in training mode (its encoder frozen if the config
    /// says so) on its autodiff device.
    pub fn new(
        model: BurnUNet,
        config: TrainConfig,
        train: Vec<Patch>,
        val: Vec<Patch>,
    ) -> Result<Trainer, ModelError> {
        let (h, w) = check_patches(&train, "training")?
            .ok_or_else(|| ModelError::Data("no training patches".into()))?;
        check_patches(&val, "validation")?;
        if config.batch_size == 0 || config.steps_per_epoch == 0 {
            return Err(ModelError::Settings(
                "batch size and steps per epoch must be at least 1".into(),
            ));
        }
        let d = model.divisor();
        // BatchNorm needs more than one value per channel at the bridge, like PyTorch.
        if config.batch_size * (h / d) * (w / d) < 2 {
            return Err(ModelError::Settings(format!(
                "{h} x {w} patches in batches of {} are too small for {} levels: the bridge \
                 would see one pixel (use patches of at least {} px)",
                config.batch_size,
                model.filters.len(),
                2 * d
            )));
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
    pub fn model(&self) -> &BurnUNet {
        &self.model
    }

    /// The weights of the best validation so far (the current ones before any validation).
    pub fn best_model(&self) -> &BurnUNet {
        self.best.as_ref().unwrap_or(&self.model)
    }

    pub fn into_best_model(self) -> BurnUNet {
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

    fn finish_step(
        &mut self,
        data: TensorData,
        counts: [usize; 3],
    ) -> Result<StepReport, ModelError> {
        let v = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(readback("the loss"))?;
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

    /// One training step, reading its loss back asynchronously (the browser's way).
    pub async fn step(&mut self) -> Result<StepReport, ModelError> {
        let (t, counts) = self.step_tensors();
        let data = t.into_data_async().await.map_err(readback("the loss"))?;
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
    ) -> Result<ValSums, ModelError> {
        let sums = sums
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(readback("the validation loss"))?;
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
                    let got = pred.get(at..at + n).ok_or_else(|| ModelError::Readback {
                        what: "the validation classes",
                        detail: "fewer than the patches".into(),
                    })?;
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
    /// keeps the weights if they are the best so far and updates early stopping.
    pub async fn validate(&mut self) -> Result<ValReport, ModelError> {
        let sums = match self.val_tensors() {
            Some(t) => Some(
                self.read_val(
                    t.sums
                        .into_data_async()
                        .await
                        .map_err(readback("the validation loss"))?,
                    t.classes
                        .into_data_async()
                        .await
                        .map_err(readback("the validation classes"))?,
                    t.counts,
                )?,
            ),
            None => None,
        };
        Ok(self.finish_validation(sums))
    }

    /// The validation loss and scores of the model as it is, without closing an epoch: the
    /// "before" of a fine-tuning run. `None` without validation patches.
    pub async fn baseline(&self) -> Result<Option<Baseline>, ModelError> {
        let Some(t) = self.val_tensors() else {
            return Ok(None);
        };
        let v = self.read_val(
            t.sums
                .into_data_async()
                .await
                .map_err(readback("the validation loss"))?,
            t.classes
                .into_data_async()
                .await
                .map_err(readback("the validation classes"))?,
            t.counts,
        )?;
        Ok(Some(self.baseline_report(&v)))
    }

    /// Runs to the end (all epochs or early stopping), reporting every step and validation;
    /// `on_event` returning `false` stops the run after that event. Native only.
    #[cfg(not(target_family = "wasm"))]
    pub fn run(&mut self, mut on_event: impl FnMut(&TrainEvent) -> bool) -> Result<(), ModelError> {
        while !self.finished() {
            let event = if self.epoch_done() {
                TrainEvent::Validation(crate::block_on(self.validate())?)
            } else {
                TrainEvent::Step(crate::block_on(self.step())?)
            };
            if !on_event(&event) {
                break;
            }
        }
        Ok(())
    }
}
