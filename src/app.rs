//! The page: its layout, over the state (`state/`) and its actions (`actions.rs`).

use icelens_core::render::SarView;
use leptos::prelude::*;

use crate::actions;
use crate::browser::cpu_worker;
use crate::browser::files::file_list;
use crate::components::atlas::AtlasPanel;
use crate::components::conditions::ConditionsPanel;
use crate::components::panels::{Legend, ModelCard, SceneCard, ScoresPanel};
use crate::components::story::{StoryOverlay, StoryPanel};
use crate::components::training::TrainingPanel;
use crate::components::upload::PackageButton;
use crate::components::viewer::Viewer;
use crate::inference::{self, Backend};
use crate::layers::Layer;
use crate::state::AppState;

/// Shows a panic in the page instead of leaving it silently dead.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("fatal"))
        {
            el.set_text_content(Some(&format!(
                "icelens hit an internal error and must be reloaded: {info}"
            )));
            let _ = el.set_attribute("class", "fatal shown");
        }
    }));
}

#[component]
pub fn App() -> impl IntoView {
    let app = AppState::new();
    provide_context(app);
    actions::start(app);
    let AppState {
        scenes,
        current,
        models,
        model_index,
        errors,
        loading,
        file_progress,
        sar_view,
        layer,
        opacity,
        dragging,
        gpu_available,
        backend,
        progress,
        cancel,
        panel,
        story,
        skipped,
        model,
        ..
    } = app;
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        actions::open_files(app, file_list(ev.data_transfer().and_then(|d| d.files())));
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        actions::open_files(app, file_list(input.files()));
        input.set_value("");
    };

    view! {
        <div
            class="app"
            class:dragging=move || dragging.get()
            class:presenting=move || story.presenting.get()
            class:bare=move || story.bare.get()
            data-testid="drop-zone"
            on:dragenter=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            <header>
                <h1>"icelens"</h1>
                <p class="tagline">"Sea ice charts from Sentinel-1, in your browser, offline"</p>
                <span class="backend" title="The arithmetic that runs the model">
                    <span class="backend-label">"backend "</span>
                    <span data-testid="backend">{move || backend.get().key()}</span>
                    // The CPU path's workers for the model shown: every core, within memory.
                    <span class="threads" data-testid="threads" title="CPU workers that run a scene's tiles side by side">
                        {move || match (backend.get(), model.get()) {
                            (Backend::Cpu, Some(m)) if cpu_worker::available() => {
                                let n = cpu_worker::threads(&m, &inference::page_options());
                                format!(" · {n} thread{}", if n == 1 { "" } else { "s" })
                            }
                            _ => String::new(),
                        }}
                    </span>
                </span>
                <label class="button">
                    "Open scenes or a model…"
                    <input type="file" multiple data-testid="file-input" accept=".nc,.pt,.pth,.safetensors,.bpk" on:change=on_pick />
                </label>
            </header>
            <div id="fatal" class="fatal"></div>
            <div class="errors">
                <For each=move || errors.get().into_iter().enumerate() key=|(i, _)| *i let((i, msg))>
                    <div class="error" data-testid="error">
                        <span>{msg}</span>
                        <button class="dismiss" title="Dismiss" on:click=move |_| errors.update(|v| { if i < v.len() { v[i] = String::new(); } })>"×"</button>
                    </div>
                </For>
            </div>
            <main>
                <aside>
                    <section>
                        <h2>"Scenes"</h2>
                        <ul class="scenes" data-testid="scene-list">
                            <For each=move || scenes.get().into_iter().enumerate() key=|(i, s)| (*i, s.file.clone()) let((i, s))>
                                <li class:active=move || current.get() == i on:click={
                                    let file = s.file.clone();
                                    move |_| {
                                        current.set(i);
                                        skipped.update(|k| k.retain(|key| key.0 != file));
                                    }
                                }>
                                    <SceneCard scene=s.clone() />
                                </li>
                            </For>
                            <For each=move || loading.get() key=|n| n.clone() children=move |name: String| {
                                let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
                                let stage = Signal::derive(move || file_progress.with(|m| m.get(&n1).map(|p| p.stage.clone()).unwrap_or_default()));
                                let pct = Signal::derive(move || file_progress.with(|m| m.get(&n2).map(|p| 100.0 * p.done / p.total.max(1.0))));
                                let reading = Signal::derive(move || pct.get().filter(|_| stage.get() != "decoding"));
                                view! {
                                    <li class="loading" data-testid="file-progress" data-stage=move || stage.get() data-pct=move || pct.get().map(|v| format!("{v:.0}")).unwrap_or_default()>
                                        <span>
                                            {move || if stage.get() == "decoding" { "Decoding " } else { "Reading " }}
                                            {n3.clone()}
                                            {move || reading.get().map(|v| format!(" · {v:.0} %")).unwrap_or_else(|| "…".into())}
                                        </span>
                                        <div class="bar" class:hidden=move || reading.get().is_none()>
                                            <div class="fill" style=move || format!("width: {:.0}%", reading.get().unwrap_or(0.0))></div>
                                        </div>
                                    </li>
                                }
                            } />
                        </ul>
                        <p class="hint">"Drop AI4Arctic ready-to-train scenes (.nc) and a trained U-Net (.pt or .safetensors) anywhere on the page."</p>
                    </section>
                    <section>
                        <h2>"Model"</h2>
                        <ul class="scenes models" data-testid="model-list" class:hidden=move || models.with(|v| v.len() < 2)>
                            <For each=move || models.get().into_iter().enumerate() key=|(i, m)| (*i, m.name.clone()) let((i, m))>
                                <li class:active=move || model_index.get() == i on:click=move |_| model_index.set(i)>
                                    <div class="scene-name">{m.name.clone()}</div>
                                    <div class="scene-meta">{format!("{} levels · {} parameters", m.net.arch.levels(), m.net.arch.parameter_count())}</div>
                                </li>
                            </For>
                        </ul>
                        {move || match model.get() {
                            Some(m) => view! { <ModelCard model=m /> }.into_any(),
                            None => view! { <p class="hint">"No model yet: drop the checkpoint your training notebook wrote (torch.save zip) or a safetensors file."</p> }.into_any(),
                        }}
                        <label>"Backend "
                            <select prop:value=move || backend.get().key() on:change=move |ev| backend.set(if event_target_value(&ev) == "webgpu" { Backend::WebGpu } else { Backend::Cpu })>
                                <option value="webgpu" disabled=move || !gpu_available.get()>"WebGPU"</option>
                                <option value="cpu">"CPU"</option>
                            </select>
                        </label>
                        <div class="progress" data-testid="progress" class:idle=move || progress.get().is_none()>
                            {move || progress.get().map(|(label, done, total, started)| {
                                let elapsed = (js_sys::Date::now() - started) / 1000.0;
                                let left = if done > 0 { elapsed / done as f64 * (total - done) as f64 } else { f64::NAN };
                                let pct = 100.0 * done as f64 / total.max(1) as f64;
                                view! {
                                    <div class="bar"><div class="fill" style=format!("width: {pct:.0}%")></div></div>
                                    <span>{format!("{label}: tile {done} of {total}")}{if left.is_finite() { format!(" · {left:.0} s left") } else { String::new() }}</span>
                                }
                            })}
                            <button class="cancel" data-testid="cancel" on:click=move |_| cancel.set(true)>"Cancel"</button>
                        </div>
                        <PackageButton />
                    </section>
                    <section>
                        <h2>"View"</h2>
                        <label>"SAR "
                            <select data-testid="sar-select" prop:value=move || sar_view.get().key() on:change=move |ev| sar_view.set(SarView::from_key(&event_target_value(&ev)))>
                                <option value="HH">"HH"</option>
                                <option value="HV">"HV"</option>
                                <option value="FC">"False colour"</option>
                            </select>
                        </label>
                        <label>"Layer "
                            <select data-testid="layer-select" prop:value=move || layer.get().key() on:change=move |ev| layer.set(Layer::from_key(&event_target_value(&ev)))>
                                {move || Layer::all(model.get().map(|m| m.attention_blocks()).unwrap_or(0)).into_iter().map(|(l, label)| view! { <option value=l.key() selected=l == layer.get_untracked()>{label}</option> }).collect::<Vec<_>>()}
                            </select>
                        </label>
                        <label>"Opacity "
                            <input type="range" min="0" max="100" data-testid="opacity" prop:value=move || opacity.get().to_string()
                                on:input=move |ev| opacity.set(event_target_value(&ev).parse().unwrap_or(70)) />
                        </label>
                    </section>
                    <StoryPanel />
                    <ScoresPanel />
                </aside>
                <div class="stage">
                    <Viewer />
                    <StoryOverlay />
                    <div class="side" data-panel=move || panel.get()>
                        <Legend />
                        <ConditionsPanel />
                        <AtlasPanel />
                        <TrainingPanel />
                    </div>
                </div>
            </main>
        </div>
    }
}
