//! Fine-tuning in the page: pick a subset (scenes, the area in view, or a condition from the
//! "where is it worst" table), train on WebGPU (or burn's CPU backend where there is none)
//! with burn's autodiff one step at a time, and see the losses, the validation scores and the
//! before/after comparison as it goes.
//!
//! The loop yields to the browser after every step, so the page stays usable (pan, zoom,
//! switch scenes) and the pause and cancel buttons answer within one step. The result is an
//! ordinary model of the page: every labelled scene is run with it, the conditions table
//! compares it with the original, and it exports as `.pt`, safetensors or burnpack.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use icelens_core::breakdown::{condition_mask, Dimension};
use icelens_core::checkpoint::{write_burnpack, write_safetensors, write_torch};
use icelens_core::input::Window;
use icelens_core::metrics::Scores;
use icelens_core::plots::loss_svg;
use icelens_core::Scene;
use icelens_model::burn::tensor::Device;
use icelens_model::train::{Freeze, TrainConfig};
use icelens_model::{balance_weights, share_weights, Area, SicHead};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::files::download;
use crate::inference;
use crate::state::AppState;
use compare::BeforeAfter;
use run::{num, AreaChoice, History, Outcome, Phase, Settings, Start, TrainOn, MAX_PATCH_BYTES};

mod compare;
mod run;

/// Fine-tuning: the form, the run with its live losses, and the before/after comparison.
#[component]
pub fn TrainingPanel() -> impl IntoView {
    let AppState {
        scenes,
        current,
        models,
        model_index,
        errors,
        view,
        selected,
        gpu_available,
        atlas,
        ..
    } = expect_context();
    let excluded: RwSignal<HashSet<String>> = RwSignal::new(HashSet::new());
    let area = RwSignal::new(AreaChoice::Scenes);
    let start = RwSignal::new(Start::Loaded);
    let filters = RwSignal::new(String::from("8,16,32"));
    let regression = RwSignal::new(false);
    let attention = RwSignal::new(false);
    let patches = RwSignal::new(String::from("32"));
    let patch_size = RwSignal::new(String::from("256"));
    let batch = RwSignal::new(String::from("4"));
    let epochs = RwSignal::new(String::from("5"));
    let steps = RwSignal::new(String::from("10"));
    let lr = RwSignal::new(String::from("5e-5"));
    let val_fraction = RwSignal::new(String::from("0.25"));
    let patience = RwSignal::new(String::from("3"));
    let freeze = RwSignal::new(Freeze::Nothing);
    let balance: RwSignal<Option<Dimension>> = RwSignal::new(None);
    let follow_test = RwSignal::new(false);
    let seed = RwSignal::new(String::from("0"));

    let on = RwSignal::new(None::<TrainOn>);
    // WebGPU when the browser has it, unless the user chose.
    let train_on = Signal::derive(move || {
        on.get().unwrap_or(if gpu_available.get() {
            TrainOn::WebGpu
        } else {
            TrainOn::Cpu
        })
    });
    let phase = RwSignal::new(Phase::Idle);
    let history = RwSignal::new(History::default());
    let outcome: RwSignal<Option<Outcome>> = RwSignal::new(None);
    let paused = Rc::new(Cell::new(false));
    let cancelled = Rc::new(Cell::new(false));

    // Transfer learning uses half the learning rate of training from scratch (the team's
    // 6-level model was fine-tuned at 5e-5).
    Effect::new(move |_| {
        lr.set(
            match start.get() {
                Start::Loaded => "5e-5",
                _ => "1e-4",
            }
            .into(),
        );
    });

    let labelled = Signal::derive(move || {
        scenes
            .get()
            .into_iter()
            .filter(|s| s.has_charts())
            .collect::<Vec<_>>()
    });
    let chosen = Signal::derive(move || {
        let ex = excluded.get();
        labelled
            .get()
            .into_iter()
            .filter(|s| !ex.contains(&s.file))
            .collect::<Vec<_>>()
    });

    let settings = move || -> Result<Settings, String> {
        let config = TrainConfig {
            lr: num(&lr.get_untracked(), "learning rate")?,
            batch_size: num(&batch.get_untracked(), "batch size")?,
            epochs: num(&epochs.get_untracked(), "epochs")?,
            steps_per_epoch: num(&steps.get_untracked(), "steps per epoch")?,
            patch_size: num(&patch_size.get_untracked(), "patch size")?,
            val_fraction: num(&val_fraction.get_untracked(), "validation share")?,
            patience: num(&patience.get_untracked(), "patience")?,
            freeze: freeze.get_untracked(),
            chart_weights: TrainConfig::default_weights(if regression.get_untracked() {
                SicHead::Regression
            } else {
                SicHead::Classification
            }),
            seed: num(&seed.get_untracked(), "seed")?,
        };
        let lr_ok = config.lr.is_finite() && config.lr > 0.0 && config.lr < 1.0;
        if !lr_ok || !(0.0..1.0).contains(&config.val_fraction) {
            return Err(
                "learning rate must be in (0, 1) and the validation share in [0, 1)".into(),
            );
        }
        if config.batch_size == 0 || config.epochs == 0 || config.steps_per_epoch == 0 {
            return Err("batch size, epochs and steps per epoch must be at least 1".into());
        }
        let n: usize = num(&patches.get_untracked(), "patches")?;
        let bytes = n
            .saturating_mul(config.patch_size)
            .saturating_mul(config.patch_size)
            .saturating_mul(24 * 4);
        if n == 0 || config.patch_size < 16 || bytes > MAX_PATCH_BYTES {
            return Err(format!(
                "{n} patches of {0} x {0} px would take {1:.0} MB; keep it under {2:.0} MB (fewer or smaller patches), with patches of at least 16 px",
                config.patch_size,
                bytes as f64 / 1e6,
                MAX_PATCH_BYTES as f64 / 1e6
            ));
        }
        let shares = match (balance.get_untracked(), follow_test.get_untracked()) {
            (Some(d), true) => {
                let source = atlas.source.get_untracked();
                let a = atlas.atlas.get_untracked().ok_or(
                    "to follow the test set, open the dataset atlas (below) with a training and a test list",
                )?;
                Some((
                    source.clone(),
                    a.test_shares(&source, d).map_err(|e| e.to_string())?,
                ))
            }
            _ => None,
        };
        Ok(Settings {
            area: area.get_untracked(),
            start: start.get_untracked(),
            filters: filters.get_untracked(),
            regression: regression.get_untracked(),
            attention: attention.get_untracked(),
            patches: n,
            config,
            balance: balance.get_untracked(),
            shares,
        })
    };

    // The area the view shows on the current scene, as a rectangle of scene pixels.
    let view_rect = move || -> Option<(String, Window)> {
        let s = scenes.with_untracked(|v| v.get(current.get_untracked()).cloned())?;
        let (w, h) = view.size.get_untracked();
        let z = view.zoom.get_untracked();
        let (cx, cy) = view.center.get_untracked();
        let x0 = (cx - w / z / 2.0).max(0.0) as usize;
        let y0 = (cy - h / z / 2.0).max(0.0) as usize;
        let x1 = ((cx + w / z / 2.0).max(0.0) as usize).min(s.samples);
        let y1 = ((cy + h / z / 2.0).max(0.0) as usize).min(s.lines);
        (x1 > x0 && y1 > y0).then(|| (s.file.clone(), Window::new(y0, x0, y1 - y0, x1 - x0)))
    };

    let fail = move |e: String| {
        phase.set(Phase::Failed(e.clone()));
        errors.update(|v| v.push(format!("fine-tuning: {e}")));
    };

    let run_paused = paused.clone();
    let run_cancelled = cancelled.clone();
    let start_run = move |_| {
        if phase.with_untracked(|p| p.busy()) {
            return;
        }
        let device = match train_on.get_untracked() {
            TrainOn::Cpu => Device::flex(),
            TrainOn::WebGpu => match inference::gpu_device() {
                Some(d) => d,
                None => return fail("this browser offers no WebGPU: train on the CPU".into()),
            },
        };
        let settings = match settings() {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let base = models.with_untracked(|v| v.get(model_index.get_untracked()).cloned());
        if settings.start != Start::Scratch && base.is_none() {
            return fail("load a model to fine-tune, or start from scratch".into());
        }
        let mut chosen = chosen.get_untracked();
        let mut areas: Vec<Area> = vec![Area::Whole; chosen.len()];
        let mut in_view = None;
        match settings.area {
            AreaChoice::Scenes => {}
            AreaChoice::View => {
                let Some((file, rect)) = view_rect() else {
                    return fail("no scene in view".into());
                };
                chosen.retain(|s| s.file == file);
                areas = vec![Area::Rect(rect); chosen.len()];
                in_view = chosen.first().map(|s| (s.meta.scene.clone(), rect));
            }
            AreaChoice::Condition => {
                let Some(c) = selected.get_untracked() else {
                    return fail(
                        "pick a condition in the \"where is it worst\" table first".into(),
                    );
                };
                let masks: Vec<Vec<bool>> = chosen.iter().map(|s| condition_mask(s, &c)).collect();
                if !masks.iter().any(|m| m.iter().any(|p| *p)) {
                    return fail(format!("{c} covers no pixel of the chosen scenes"));
                }
                areas = masks
                    .into_iter()
                    .map(|m| Area::Pixels(Arc::new(m)))
                    .collect();
            }
        }
        if chosen.is_empty() {
            return fail("no labelled scene chosen to learn from".into());
        }
        let refs: Vec<&Scene> = chosen.iter().map(|s| s.as_ref()).collect();
        let weights = match (settings.balance, &settings.shares) {
            (Some(d), Some((source, shares))) => share_weights(&refs, d, shares)
                .map_err(|e| format!("following the test set of {source}: {e}")),
            (Some(d), None) => balance_weights(&refs, d).map_err(String::from),
            (None, _) => Ok(vec![1.0; chosen.len()]),
        };
        let weights = match weights {
            Ok(w) => w,
            Err(e) => return fail(e),
        };
        let total: f64 = weights.iter().sum();
        let draws: Vec<(String, f64)> = chosen
            .iter()
            .zip(&weights)
            .map(|(s, w)| (s.meta.scene.clone(), w / total))
            .collect();
        run_paused.set(false);
        run_cancelled.set(false);
        outcome.set(None);
        history.set(History {
            started: js_sys::Date::now(),
            total_steps: settings.config.epochs * settings.config.steps_per_epoch,
            draws,
            area: in_view,
            ..History::default()
        });
        phase.set(Phase::Preparing("drawing patches".into()));
        let (paused, cancelled) = (run_paused.clone(), run_cancelled.clone());
        spawn_local(async move {
            inference::yield_to_browser().await;
            let job = run::Job {
                settings,
                base,
                device,
                chosen,
                areas,
                weights,
                models,
            };
            let live = run::Live {
                history,
                phase,
                paused,
                cancelled: cancelled.clone(),
            };
            let result = run::train(job, live).await;
            match result {
                Ok(Some(o)) => {
                    models.update(|v| v.push(o.tuned.clone()));
                    model_index.set(models.with_untracked(|v| v.len() - 1));
                    outcome.set(Some(o));
                    phase.set(if cancelled.get() {
                        Phase::Cancelled
                    } else {
                        Phase::Done
                    });
                }
                Ok(None) => phase.set(Phase::Cancelled),
                Err(e) => fail(e),
            }
        });
    };

    let pause_flag = paused.clone();
    let toggle_pause = move |_| {
        let p = !pause_flag.get();
        pause_flag.set(p);
        phase.update(|ph| {
            *ph = match (&*ph, p) {
                (Phase::Running, true) => Phase::Paused,
                (Phase::Paused, false) => Phase::Running,
                (other, _) => other.clone(),
            }
        });
    };
    let cancel_flag = cancelled.clone();
    let cancel = move |_| cancel_flag.set(true);

    let curve = move || {
        history.with(|h| {
            let epochs: Vec<(usize, f32, f32)> = h
                .epochs
                .iter()
                .map(|(step, v)| (*step, v.train_loss, v.loss))
                .collect();
            loss_svg(&h.steps, &epochs, h.before.as_ref().map(|b| b.loss)).unwrap_or_default()
        })
    };

    let export = move |fmt: &'static str| {
        let Some(o) = outcome.get_untracked() else {
            return;
        };
        let sd = &o.tuned.state;
        let stem = o.tuned.name.replace(' ', "-");
        let (bytes, ext) = match fmt {
            "pt" => (write_torch(sd, sd.epoch), "pt"),
            "safetensors" => (write_safetensors(sd), "safetensors"),
            _ => (write_burnpack(sd, &[]), "bpk"),
        };
        download(&format!("{stem}.{ext}"), "application/octet-stream", &bytes);
    };

    view! {
        <section class="training" data-testid="training">
            <h2>"Fine-tune"</h2>
            <p class="hint">"Train the model further on a few scenes, the area in view, or a condition from the table, and see at once whether it helped."</p>
            {move || (train_on.get() == TrainOn::Cpu).then(|| view! { <p class="hint warn">"On the CPU every step holds the page for its duration: use small patches, or a browser with WebGPU."</p> })}
            <fieldset disabled=move || phase.with(|p| p.busy())>
                <div class="train-grid">
                    <label>"Train on "
                        <select data-testid="train-device" prop:value=move || if train_on.get() == TrainOn::WebGpu { "webgpu" } else { "cpu" }
                            on:change=move |ev| on.set(Some(if event_target_value(&ev) == "webgpu" { TrainOn::WebGpu } else { TrainOn::Cpu }))>
                            <option value="webgpu" disabled=move || !gpu_available.get()>"WebGPU"</option>
                            <option value="cpu">"CPU"</option>
                        </select>
                    </label>
                    <label>"Learn from "
                        <select data-testid="train-area" on:change=move |ev| area.set(match event_target_value(&ev).as_str() { "view" => AreaChoice::View, "condition" => AreaChoice::Condition, _ => AreaChoice::Scenes })>
                            <option value="scenes">"the chosen scenes"</option>
                            <option value="view">"the area in view"</option>
                            <option value="condition">"the condition picked in the table"</option>
                        </select>
                    </label>
                    <label>"Start from "
                        <select data-testid="train-start-from" on:change=move |ev| start.set(match event_target_value(&ev).as_str() { "scratch" => Start::Scratch, "smaller" => Start::Smaller, _ => Start::Loaded })>
                            <option value="loaded">"the loaded model"</option>
                            <option value="smaller">"the loaded model, grown"</option>
                            <option value="scratch">"scratch"</option>
                        </select>
                    </label>
                    <label class:hidden=move || start.get() == Start::Loaded>"Filters "
                        <input data-testid="train-filters" prop:value=move || filters.get() on:change=move |ev| filters.set(event_target_value(&ev)) />
                    </label>
                    <label class:hidden=move || start.get() == Start::Loaded>"SIC as regression "
                        <input type="checkbox" prop:checked=move || regression.get() on:change=move |ev| regression.set(event_target_checked(&ev)) />
                    </label>
                    <label class:hidden=move || start.get() == Start::Loaded>"Attention gates "
                        <input type="checkbox" data-testid="train-attention" prop:checked=move || attention.get() on:change=move |ev| attention.set(event_target_checked(&ev)) />
                    </label>
                    <label>"Patches " <input data-testid="train-patches" prop:value=move || patches.get() on:change=move |ev| patches.set(event_target_value(&ev)) /></label>
                    <label>"Patch size " <input data-testid="train-patch-size" prop:value=move || patch_size.get() on:change=move |ev| patch_size.set(event_target_value(&ev)) /></label>
                    <label>"Batch " <input data-testid="train-batch" prop:value=move || batch.get() on:change=move |ev| batch.set(event_target_value(&ev)) /></label>
                    <label>"Epochs " <input data-testid="train-epochs" prop:value=move || epochs.get() on:change=move |ev| epochs.set(event_target_value(&ev)) /></label>
                    <label>"Steps per epoch " <input data-testid="train-steps" prop:value=move || steps.get() on:change=move |ev| steps.set(event_target_value(&ev)) /></label>
                    <label>"Learning rate " <input data-testid="train-lr" prop:value=move || lr.get() on:change=move |ev| lr.set(event_target_value(&ev)) /></label>
                    <label>"Validation share " <input data-testid="train-val" prop:value=move || val_fraction.get() on:change=move |ev| val_fraction.set(event_target_value(&ev)) /></label>
                    <label>"Patience " <input data-testid="train-patience" prop:value=move || patience.get() on:change=move |ev| patience.set(event_target_value(&ev)) /></label>
                    <label>"Seed " <input data-testid="train-seed" prop:value=move || seed.get() on:change=move |ev| seed.set(event_target_value(&ev)) /></label>
                    <label>"Freeze "
                        <select data-testid="train-freeze" on:change=move |ev| freeze.set(match event_target_value(&ev).as_str() { "encoder" => Freeze::Encoder, "encoder+bridge" => Freeze::EncoderAndBridge, _ => Freeze::Nothing })>
                            <option value="none">"nothing"</option>
                            <option value="encoder">"the encoder"</option>
                            <option value="encoder+bridge">"encoder and bridge"</option>
                        </select>
                    </label>
                    <label>"Balance by "
                        <select data-testid="train-balance" on:change=move |ev| balance.set(event_target_value(&ev).parse().ok())>
                            <option value="none">"nothing"</option>
                            <option value="service">"ice service"</option>
                            <option value="region">"region"</option>
                            <option value="mission">"mission"</option>
                            <option value="year">"year"</option>
                            <option value="month">"month"</option>
                            <option value="season">"season"</option>
                        </select>
                    </label>
                    <label title="Draw each group with its share of the test set in the dataset atlas (test share / training share), rather than equally">
                        <input type="checkbox" data-testid="train-follow-test" prop:checked=move || follow_test.get()
                            disabled=move || balance.get().is_none() || atlas.atlas.with(Option::is_none)
                            on:change=move |ev| follow_test.set(event_target_checked(&ev)) />
                        {move || match atlas.atlas.with(Option::is_some) { true => format!(" follow the test set ({})", atlas.source.get()), false => " follow the test set (open the dataset atlas)".to_string() }}
                    </label>
                </div>
                <ul class="train-scenes" data-testid="train-scenes">
                    <For each=move || labelled.get() key=|s| s.file.clone() let(s)>
                        <li>
                            <label>
                                <input type="checkbox"
                                    prop:checked={ let f = s.file.clone(); move || !excluded.with(|e| e.contains(&f)) }
                                    on:change={ let f = s.file.clone(); move |ev| { let on = event_target_checked(&ev); excluded.update(|e| { if on { e.remove(&f); } else { e.insert(f.clone()); } }); } } />
                                {s.meta.scene.clone()}
                            </label>
                        </li>
                    </For>
                </ul>
                {move || (area.get() == AreaChoice::Condition).then(|| view! {
                    <p class="hint">{move || match selected.get() { Some(c) => format!("Patches centred on {c}"), None => "Click a row of the table to pick a condition.".into() }}</p>
                })}
            </fieldset>
            <div class="train-actions">
                <button class="primary" data-testid="train-run" disabled=move || phase.with(|p| p.busy()) on:click=start_run>"Fine-tune"</button>
                <button data-testid="train-pause" disabled=move || !phase.with(|p| matches!(p, Phase::Running | Phase::Paused)) on:click=toggle_pause>
                    {move || if phase.get() == Phase::Paused { "Resume" } else { "Pause" }}
                </button>
                <button data-testid="train-cancel" disabled=move || !phase.with(|p| p.busy()) on:click=cancel>"Stop"</button>
            </div>
            <div class="train-status" data-testid="train-status"
                data-first-step-seconds=move || history.with(|h| h.step_seconds.first().map(|s| format!("{s:.2}")).unwrap_or_default())
                data-step-seconds=move || history.with(|h| h.mean_step_seconds().map(|s| format!("{s:.2}")).unwrap_or_default())
                data-phase=move || match phase.get() { Phase::Idle => "idle", Phase::Preparing(_) => "preparing", Phase::Running => "running", Phase::Paused => "paused", Phase::Done => "done", Phase::Cancelled => "cancelled", Phase::Failed(_) => "failed" }>
                {move || {
                    let h = history.get();
                    let done = h.steps.len();
                    let elapsed = (js_sys::Date::now() - h.started) / 1000.0;
                    let left = if done > 0 { elapsed / done as f64 * h.total_steps.saturating_sub(done) as f64 } else { f64::NAN };
                    match phase.get() {
                        Phase::Idle => String::new(),
                        Phase::Preparing(what) => format!("{what}…"),
                        Phase::Failed(e) => format!("failed: {e}"),
                        p => format!(
                            "{} · step {done} of {} · {} training / {} validation patches{}{}",
                            match p { Phase::Paused => "paused", Phase::Done => "done", Phase::Cancelled => "stopped", _ => "training" },
                            h.total_steps, h.patches.0, h.patches.1,
                            h.mean_step_seconds().map(|s| format!(" · {s:.1} s a step")).unwrap_or_default(),
                            if matches!(p, Phase::Running) && left.is_finite() { format!(" · {left:.0} s left") } else { String::new() }
                        ),
                    }
                }}
                <div class="bar"><div class="fill" style=move || history.with(|h| format!("width: {:.0}%", 100.0 * h.steps.len() as f64 / h.total_steps.max(1) as f64))></div></div>
            </div>
            {move || history.with(|h| (h.draws.len() > 1).then(|| view! {
                <p class="hint draws" data-testid="train-draws">"Patches drawn from "
                    {h.draws.iter().map(|(scene, share)| view! { <span data-testid="train-draw" data-scene=scene.clone() data-share=share.to_string()>{format!("{scene} {:.1} %", 100.0 * share)}</span> }).collect::<Vec<_>>()}
                </p>
            }))}
            {move || history.with(|h| h.area.clone()).map(|(scene, w)| view! {
                <p class="hint" data-testid="train-area-used" data-scene=scene.clone()
                    data-area=format!("{},{},{},{}", w.row, w.col, w.height, w.width)>
                    {format!("Patches drawn from rows {}–{} and columns {}–{} of {scene}", w.row, w.row + w.height, w.col, w.col + w.width)}
                </p>
            })}
            <div class="chart train-curve" data-testid="train-curve" class:hidden=move || history.with(|h| h.steps.is_empty() && h.before.is_none()) inner_html=curve></div>
            <table class="train-epochs" data-testid="train-epochs" class:hidden=move || history.with(|h| h.before.is_none())>
                <thead><tr><th>"epoch"</th><th>"train loss"</th><th>"val loss"</th><th>"SIC R²"</th><th>"SOD F1"</th><th>"FLOE F1"</th><th>"combined"</th></tr></thead>
                <tbody>
                    {move || history.with(|h| h.before.clone()).map(|b| view! {
                        <tr class="before" data-testid="train-before" data-val-loss=b.loss.to_string()>
                            <td>"before"</td><td>"—"</td><td>{format!("{:.4}", b.loss)}</td>
                            <td>{format!("{:.1}", b.scores.SIC)}</td><td>{format!("{:.1}", b.scores.SOD)}</td><td>{format!("{:.1}", b.scores.FLOE)}</td><td>{format!("{:.1}", b.scores.combined)}</td>
                        </tr>
                    })}
                    {move || history.with(|h| h.epochs.clone()).into_iter().map(|(_, v)| {
                        let s = v.scores;
                        let cell = move |f: fn(&Scores) -> f64| s.map_or("—".to_string(), |s| format!("{:.1}", f(&s)));
                        view! {
                            <tr data-testid="train-epoch" data-val-loss=v.loss.to_string() class:best=v.improved>
                                <td>{v.epoch + 1}{if v.improved { " ★" } else { "" }}</td>
                                <td>{format!("{:.4}", v.train_loss)}</td><td>{format!("{:.4}", v.loss)}</td>
                                <td>{cell(|s| s.SIC)}</td><td>{cell(|s| s.SOD)}</td><td>{cell(|s| s.FLOE)}</td><td>{cell(|s| s.combined)}</td>
                            </tr>
                        }
                    }).collect::<Vec<_>>()}
                </tbody>
            </table>
            {move || outcome.get().map(|o| view! { <BeforeAfter outcome=o export=export /> })}
        </section>
    }
}
