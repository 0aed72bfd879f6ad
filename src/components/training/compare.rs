//! Before and after a run: the scores of the original and the fine-tuned model over the
//! training scenes and the others, their maps side by side, and the exports.

use std::collections::HashSet;
use std::sync::Arc;

use icelens_core::breakdown::Accumulator;
use icelens_core::metrics::Scores;
use icelens_core::{Chart, Scene};
use leptos::prelude::*;

use super::run::Outcome;
use crate::browser::picture::draw;
use crate::inference::Run;
use crate::layers::{layer_rgba, Layer};
use crate::state::AppState;

/// Pooled scores of a model over scenes, from the page's runs: `None` until every scene has
/// been run with it.
fn pooled(
    model: &str,
    scenes: &[Arc<Scene>],
    run_of: &dyn Fn(&Scene) -> Option<Arc<Run>>,
) -> Option<Scores> {
    if scenes.is_empty() {
        return None;
    }
    let mut acc = Accumulator::new(model, &[]);
    for s in scenes {
        let r = run_of(s)?;
        let p = &r.prediction;
        acc.add_scene(
            s,
            [
                p.chart(Chart::SIC),
                p.chart(Chart::SOD),
                p.chart(Chart::FLOE),
            ],
        )
        .ok()?;
    }
    Some(acc.scores())
}

/// Scores and maps of the original and the fine-tuned model side by side, and the exports.
#[component]
pub(super) fn BeforeAfter(
    outcome: Outcome,
    export: impl Fn(&'static str) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let app: AppState = expect_context();
    let AppState {
        scenes,
        current,
        models,
        ..
    } = app;
    let original = outcome.original.clone();
    let tuned = outcome.tuned.name.clone();
    let trained_on: HashSet<String> = outcome.scenes.iter().cloned().collect();
    let has_original = {
        let o = original.clone();
        move || models.with(|v| v.iter().any(|m| m.name == o))
    };
    let groups = {
        let (original, tuned) = (original.clone(), tuned.clone());
        move || {
            let labelled: Vec<Arc<Scene>> = scenes
                .get()
                .into_iter()
                .filter(|s| s.has_charts())
                .collect();
            let (inside, outside): (Vec<_>, Vec<_>) = labelled
                .into_iter()
                .partition(|s| trained_on.contains(&s.file));
            [("training scenes", inside), ("other scenes", outside)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(label, v)| {
                    let of = |name: &str| {
                        pooled(name, &v, &|s: &Scene| {
                            let s = v.iter().find(|x| x.file == s.file)?.clone();
                            app.run_of(&s, name)
                        })
                    };
                    (label, v.len(), of(&original), of(&tuned))
                })
                .collect::<Vec<_>>()
        }
    };
    let chart = RwSignal::new(Chart::SOD);
    let before_canvas = NodeRef::<leptos::html::Canvas>::new();
    let after_canvas = NodeRef::<leptos::html::Canvas>::new();
    {
        let (original, tuned) = (original.clone(), tuned.clone());
        Effect::new(move |_| {
            let Some(s) = scenes.with(|v| v.get(current.get()).cloned()) else {
                return;
            };
            let c = chart.get();
            for (node, name) in [(before_canvas, &original), (after_canvas, &tuned)] {
                let (Some(canvas), Some(run)) = (node.get(), app.run_of(&s, name)) else {
                    continue;
                };
                if let Some(rgba) =
                    layer_rgba(&s, Some(&run.prediction), None, Layer::Prediction(c))
                {
                    draw(&canvas, &rgba, s.samples, s.lines);
                }
            }
        });
    }
    let fmt = |s: Option<Scores>, f: fn(&Scores) -> f64| {
        s.map_or("…".to_string(), |s| format!("{:.1}", f(&s)))
    };
    view! {
        <div class="before-after" data-testid="train-compare">
            <h3>"Before and after"</h3>
            {move || (!has_original()).then(|| view! { <p class="hint">"The original model is no longer loaded: only the fine-tuned one is scored."</p> })}
            <table>
                <thead><tr><th>"scenes"</th><th>"model"</th><th>"SIC R²"</th><th>"SOD F1"</th><th>"FLOE F1"</th><th>"combined"</th></tr></thead>
                <tbody>
                    {move || groups().into_iter().flat_map(|(label, n, a, b)| {
                        let diff = match (a, b) { (Some(a), Some(b)) => Some(b.combined - a.combined), _ => None };
                        [
                            view! { <tr data-testid="train-compare-row" data-group=label data-which="before" data-combined=a.map(|s| s.combined.to_string()).unwrap_or_default()>
                                <td rowspan="2">{format!("{label} ({n})")}</td><td>"before"</td>
                                <td>{fmt(a, |s| s.SIC)}</td><td>{fmt(a, |s| s.SOD)}</td><td>{fmt(a, |s| s.FLOE)}</td><td>{fmt(a, |s| s.combined)}</td>
                            </tr> }.into_any(),
                            view! { <tr data-testid="train-compare-row" data-group=label data-which="after" data-combined=b.map(|s| s.combined.to_string()).unwrap_or_default()>
                                <td>"after"</td>
                                <td>{fmt(b, |s| s.SIC)}</td><td>{fmt(b, |s| s.SOD)}</td><td>{fmt(b, |s| s.FLOE)}</td>
                                <td>{fmt(b, |s| s.combined)}
                                    {diff.map(|d| view! { <span class={if d > 0.0 { "diff better" } else if d < 0.0 { "diff worse" } else { "diff" }}>{format!(" {d:+.1}")}</span> })}
                                </td>
                            </tr> }.into_any(),
                        ]
                    }).collect::<Vec<_>>()}
                </tbody>
            </table>
            <div class="maps">
                <label>"Map "
                    <select on:change=move |ev| chart.set(match event_target_value(&ev).as_str() { "SIC" => Chart::SIC, "FLOE" => Chart::FLOE, _ => Chart::SOD })>
                        <option value="SOD">"SOD"</option>
                        <option value="SIC">"SIC"</option>
                        <option value="FLOE">"FLOE"</option>
                    </select>
                </label>
                <div class="side-by-side">
                    <figure><canvas node_ref=before_canvas data-testid="train-map-before"></canvas><figcaption>{original.clone()}</figcaption></figure>
                    <figure><canvas node_ref=after_canvas data-testid="train-map-after"></canvas><figcaption>{tuned.clone()}</figcaption></figure>
                </div>
            </div>
            <div class="train-export">
                "Export the fine-tuned model: "
                <button data-testid="train-export-pt" on:click=move |_| export("pt")>".pt (PyTorch)"</button>
                <button data-testid="train-export-safetensors" on:click=move |_| export("safetensors")>"safetensors"</button>
                <button data-testid="train-export-bpk" on:click=move |_| export("bpk")>"burnpack"</button>
            </div>
        </div>
    }
}
