//! The side panels: scene and model cards, scores, legend.

use std::sync::Arc;

use icelens_core::meta::SceneMeta;
use icelens_core::metrics::Scores;
use icelens_core::render::{css_colour, palette};
use icelens_core::{Chart, Scene};
use icelens_model::{Kind, SicHead};
use leptos::prelude::*;

use crate::inference::Model;
use crate::layers::Layer;
use crate::state::AppState;

#[component]
pub fn SceneCard(scene: Arc<Scene>) -> impl IntoView {
    let m = &scene.meta;
    let date = m
        .acquired
        .map(|t| format!("{:04}-{:02}-{:02}", t.year, t.month, t.day))
        .unwrap_or_else(|| "unknown date".into());
    view! {
        <div class="scene-name">{m.scene.clone()}</div>
        <div class="scene-meta">
            {SceneMeta::or_unknown(&m.ice_service).to_uppercase()} " · "
            {SceneMeta::or_unknown(&m.region).to_string()} " · "
            {SceneMeta::or_unknown(&m.mission).to_string()} " · " {date}
        </div>
        <div class="scene-meta">
            {format!("{} x {} px · {} · {}", scene.lines, scene.samples, scene.container.as_str(),
                if scene.has_charts() { "labelled" } else { "no charts" })}
        </div>
    }
}

#[component]
pub fn ModelCard(model: Arc<Model>) -> impl IntoView {
    let a = &model.net.arch;
    let heads: Vec<_> = Chart::ALL
        .iter()
        .zip(a.head_outputs)
        .map(|(c, n)| {
            let text = if *c == Chart::SIC && a.sic == SicHead::Regression {
                "1 output: regression of the class index, shown as a continuous 0–100 % ramp".to_string()
            } else {
                format!(
                    "{n} outputs: {} classes plus the \"mask\" channel the training never targets (its loss ignores 255); an argmax there means no class",
                    c.n_classes()
                )
            };
            view! { <li><b>{c.name()}</b>" " {text}</li> }
        })
        .collect();
    // An attention U-Net's gates: one per expanding block, deepest first, with the channels of
    // its inner layer; the "Attention ψ" layers show what each computes.
    let gates = (a.kind == Kind::Attention).then(|| {
        let blocks = a.expand_shapes();
        let inner: Vec<String> = blocks.iter().map(|e| e.gate.to_string()).collect();
        format!(
            "{} attention gates (expanding blocks 0 … {}, deepest first; inner channels {}): ψ of each is a layer",
            blocks.len(),
            blocks.len() - 1,
            inner.join(", ")
        )
    });
    view! {
        <div class="model-card" data-testid="model-card">
            <div class="scene-name">{model.name.clone()}</div>
            <div class="scene-meta">{format!("{}, {} levels, filters {:?}", a.name(), a.levels(), a.filters)}</div>
            <div class="scene-meta">{format!("{} trainable parameters{}", a.parameter_count(),
                model.epoch.map(|e| format!(" · trained {} epochs", e + 1)).unwrap_or_default())}</div>
            {gates.map(|g| view! { <div class="scene-meta" data-testid="model-gates">{g}</div> })}
            <ul class="heads">{heads}</ul>
            {model.notes.iter().map(|(k, v)| view! { <div class="scene-meta note">{format!("{k}: {v}")}</div> }).collect::<Vec<_>>()}
        </div>
    }
}

/// The scores of the model shown on the scene on screen.
#[component]
pub fn ScoresPanel() -> impl IntoView {
    let AppState { run, scene, .. } = expect_context();
    move || {
        let r = run.get()?;
        let labelled = scene.get().is_some_and(|s| s.has_charts());
        let scores: Option<Scores> = r.scores;
        Some(view! {
            <section class="scores">
                <h2>"Scores"</h2>
                {match scores {
                    Some(s) => view! {
                        <table>
                            <tr><td>"SIC R²"</td><td class="num" data-testid="score-SIC">{format!("{:.3}", s.SIC)}</td></tr>
                            <tr><td>"SOD F1"</td><td class="num" data-testid="score-SOD">{format!("{:.3}", s.SOD)}</td></tr>
                            <tr><td>"FLOE F1"</td><td class="num" data-testid="score-FLOE">{format!("{:.3}", s.FLOE)}</td></tr>
                            <tr class="combined"><td>"Combined"</td><td class="num" data-testid="score-combined">{format!("{:.3}", s.combined)}</td></tr>
                        </table>
                    }.into_any(),
                    None => view! { <p class="hint">{if labelled { "" } else { "This scene has no ice chart to score against." }}</p> }.into_any(),
                }}
                <p class="hint" data-testid="run-summary" data-threads=r.threads>
                    {format!("Predicted in {:.1} s on {}{}", r.seconds, r.backend.key(), match r.threads { 1 => String::new(), n => format!(", {n} threads") })}
                </p>
            </section>
        })
    }
}

/// A legend swatch's style.
fn swatch(colour: [u8; 3]) -> String {
    format!("background: {}", palette::hex(colour))
}

/// A legend ramp's style.
fn ramp(stops: &[[u8; 3]]) -> String {
    format!("background: {}", palette::gradient(stops))
}

#[component]
pub fn Legend() -> impl IntoView {
    let AppState { layer, .. } = expect_context();
    move || {
        let (title, chart) = match layer.get() {
            Layer::Chart(c) => (format!("Ice chart · {}", c.title()), Some(c)),
            Layer::Prediction(c) => (format!("Prediction · {}", c.title()), Some(c)),
            Layer::Error(Chart::SIC) => {
                return view! { <div class="legend"><h3>"Error · SIC"</h3><div class="ramp" style=ramp(&palette::ERROR_STOPS)></div><p class="hint">"0 (green) … 100 % (red) absolute difference"</p></div> }.into_any()
            }
            Layer::Error(c) => {
                return view! { <div class="legend"><h3>{format!("Error · {c}")}</h3><ul><li><span class="swatch" style=swatch(palette::WRONG)></span>"wrong class"</li><li><span class="swatch" style=swatch(palette::RIGHT)></span>"right class"</li></ul></div> }.into_any()
            }
            Layer::Confidence(c) => {
                return view! { <div class="legend"><h3>{format!("Confidence · {c}")}</h3><div class="ramp" style=ramp(&palette::CONFIDENCE_STOPS)></div><p class="hint">"softmax probability of the predicted class, 0 … 1"</p></div> }.into_any()
            }
            Layer::Versus(c) => {
                return view! { <div class="legend"><h3>{format!("Versus · {c}")}</h3><ul>
                    <li><span class="swatch" style=swatch(palette::RIGHT)></span>"the model shown is right, the other wrong"</li>
                    <li><span class="swatch" style=swatch(palette::OTHER_RIGHT)></span>"the other model is right, the one shown wrong"</li>
                    <li><span class="swatch" style=swatch(palette::BOTH_WRONG)></span>"both wrong"</li>
                </ul><p class="hint">"The other model is the first one loaded (or the second, when the first is shown). Pixels both get right are clear."</p></div> }.into_any()
            }
            Layer::Tiles => {
                return view! { <div class="legend"><h3>"Error per 64 px tile"</h3><div class="ramp" style=ramp(&palette::ERROR_STOPS)></div><p class="hint">"combined error of SIC, SOD and FLOE (weights 2/2/1): 0 (green) … 1 (red)"</p></div> }.into_any()
            }
            Layer::Attention(k) => {
                return view! { <div class="legend"><h3>{format!("Attention ψ · block {k}")}</h3><div class="ramp" style=ramp(&palette::ATTENTION_STOPS)></div><p class="hint">"0 (ignored) … 1 (attended): how strongly the gate of this expanding block passes the skip connection; block 0 is the deepest"</p></div> }.into_any()
            }
            Layer::None => return view! { <div class="legend"></div> }.into_any(),
        };
        let chart = chart.expect("chart layers");
        let items: Vec<_> = chart
            .classes()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let style = format!("background: {}", css_colour(chart, i as u8));
                view! { <li><span class="swatch" style=style></span>{name.to_string()}</li> }
            })
            .collect();
        view! {
            <div class="legend">
                <h3>{title}</h3>
                <ul>{items}</ul>
            </div>
        }
        .into_any()
    }
}
