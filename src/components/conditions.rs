//! "Where is it worst": the breakdown by condition over every loaded labelled scene, models
//! side by side, worst first; a click shows the condition's pixels and its worst tile.
//!
//! The numbers come from `icelens_core::breakdown`, the code behind `icelens evaluate --by`,
//! so the page and the command line agree to the last decimal.

use std::sync::Arc;

use icelens_core::breakdown::{
    class_name, condition_mask, dataset_histograms, tile_errors, worst_tile, ClassRow, Comparison,
    ComparisonRow, Condition, Dimension, Metric,
};
use icelens_core::{plots, Chart, Scene};
use leptos::prelude::*;
use serde::Serialize;

use crate::layers::TILE;
use crate::results::results_status;
use crate::state::AppState;

#[derive(Serialize)]
struct Export<'a> {
    ranked_by: Metric,
    models: &'a [String],
    rows: &'a [ComparisonRow],
    classes: Vec<(String, &'a [ClassRow])>,
}

fn download(name: &str, mime: &str, text: &str) {
    crate::browser::files::download(name, mime, text.as_bytes());
}

/// Higher scores are better: a positive difference is an improvement.
fn diff_class(d: f64) -> &'static str {
    if d > 0.0 {
        "diff better"
    } else if d < 0.0 {
        "diff worse"
    } else {
        "diff"
    }
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{x:.3}")
    }
}

/// "Where is it worst": the breakdown by condition of every model and of the results loaded
/// from files; a row picked is highlighted on the picture and is a subset for fine-tuning.
#[component]
pub fn ConditionsPanel() -> impl IntoView {
    let AppState {
        scenes,
        current,
        models,
        breakdown,
        run,
        view,
        highlight,
        selected,
        results,
        ..
    } = expect_context();
    let rank = RwSignal::new(Metric::Combined);
    let only: RwSignal<Option<Dimension>> = RwSignal::new(None);
    let comparison = Memo::new(move |_| {
        breakdown.with(|b| Comparison::new(&b.iter().map(|(a, _)| a).collect::<Vec<_>>()))
    });
    let rows = Memo::new(move |_| comparison.with(|c| c.ranked(rank.get(), only.get())));

    // Shows the selected condition on the current scene and jumps to its worst tile; a
    // scene-level condition first switches to a scene of that group.
    let focus = move |c: Condition| {
        if let Some(dim) = Some(c.dimension).filter(|d| d.is_scene_level()) {
            let here = scenes.with_untracked(|v| {
                v.get(current.get_untracked())
                    .and_then(|s| dim.scene_group(&s.meta))
            });
            if here.as_deref() != Some(c.group.as_str()) {
                if let Some(i) = scenes.with_untracked(|v| {
                    v.iter()
                        .position(|s| dim.scene_group(&s.meta).as_deref() == Some(&c.group))
                }) {
                    current.set(i);
                }
            }
        }
        selected.set(Some(c));
    };
    Effect::new(move |_| {
        let Some(c) = selected.get() else {
            highlight.set(None);
            return;
        };
        let Some(s) = scenes.with(|v| v.get(current.get()).cloned()) else {
            return;
        };
        let mask = condition_mask(&s, &c);
        if let Some(r) = run.get() {
            let p = &r.prediction;
            let maps = [
                p.chart(Chart::SIC),
                p.chart(Chart::SOD),
                p.chart(Chart::FLOE),
            ];
            if let Some((row, col)) = tile_errors(&s, maps, TILE)
                .ok()
                .and_then(|g| worst_tile(&g, Some(&mask)))
            {
                let (w, h) = view.size.get_untracked();
                let zoom = (w.min(h) / (3.0 * TILE as f64)).max(view.fit_zoom());
                view.focus(
                    (row * TILE + TILE / 2) as f64,
                    (col * TILE + TILE / 2) as f64,
                    zoom,
                );
            }
        }
        highlight.set(Some(Arc::new(mask)));
    });

    let export = move |json: bool| {
        let (names, rows) =
            comparison.with_untracked(|c| (c.models.clone(), c.ranked(rank.get_untracked(), None)));
        if json {
            breakdown.with_untracked(|b| {
                let doc = Export {
                    ranked_by: rank.get_untracked(),
                    models: &names,
                    rows: &rows,
                    classes: b
                        .iter()
                        .map(|(a, c)| (a.model().to_string(), c.as_slice()))
                        .collect(),
                };
                if let Ok(text) = serde_json::to_string_pretty(&doc) {
                    download("icelens-conditions.json", "application/json", &text);
                }
            });
        } else {
            let csv = Comparison {
                models: names,
                rows,
            }
            .to_csv();
            download("icelens-conditions.csv", "text/csv", &csv);
        }
    };

    let dims: Vec<Dimension> = Dimension::ALL
        .into_iter()
        .filter(|d| *d != Dimension::Class)
        .collect();
    view! {
        <section class="conditions" data-testid="conditions">
            <h2>"Where is it worst"</h2>
            {move || {
                let n = breakdown.with(|b| b.iter().map(|(a, _)| a.scenes().len()).max().unwrap_or(0));
                (n == 0).then(|| view! { <p class="hint">"Load labelled scenes and a model: every scene is scored, and the conditions it covers are ranked here, worst first."</p> })
            }}
            {move || results.with(|r| results_status(r)).map(|status| view! {
                <p class="hint loaded-results" data-testid="loaded-results">
                    {status}" "
                    <button data-testid="clear-results" on:click=move |_| results.set(vec![])>"Clear loaded results"</button>
                </p>
            })}
            <div class="condition-tools">
                <label>"Rank by "
                    <select data-testid="rank-select" on:change=move |ev| rank.set(event_target_value(&ev).parse().unwrap_or(Metric::Combined))>
                        <option value="combined">"combined"</option>
                        <option value="SIC">"SIC R²"</option>
                        <option value="SOD">"SOD F1"</option>
                        <option value="FLOE">"FLOE F1"</option>
                    </select>
                </label>
                <label>"Show "
                    <select data-testid="dimension-select" on:change=move |ev| only.set(event_target_value(&ev).parse().ok())>
                        <option value="all">"all conditions"</option>
                        {dims.iter().map(|d| view! { <option value=d.key()>{d.title()}</option> }).collect::<Vec<_>>()}
                    </select>
                </label>
                <button data-testid="export-csv" on:click=move |_| export(false)>"CSV"</button>
                <button data-testid="export-json" on:click=move |_| export(true)>"JSON"</button>
                {move || selected.get().map(|_| view! { <button on:click=move |_| selected.set(None)>"Clear highlight"</button> })}
            </div>
            <table class="condition-table">
                <thead>
                    <tr>
                        <th>"condition"</th>
                        {move || comparison.with(|c| c.models.iter().enumerate().map(|(i, m)| view! {
                            <th class="num model" title=m.clone()>{if i == 0 { m.clone() } else { format!("{m} (Δ)") }}</th>
                        }).collect::<Vec<_>>())}
                        <th class="num">"pixels"</th>
                        <th class="num">"scenes"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let by = rank.get();
                        let sel = selected.get();
                        rows.get().into_iter().map(|r| {
                            let cond = Condition::new(r.dimension, r.group.clone());
                            let active = sel.as_ref() == Some(&cond);
                            let first = r.models.iter().flatten().next().cloned();
                            let small = r.models.iter().flatten().any(|c| c.small);
                            let pixels = first.as_ref().map(|c| *c.pixels.iter().max().unwrap_or(&0)).unwrap_or(0);
                            let scenes_n = first.as_ref().map(|c| c.scenes).unwrap_or(0);
                            let names = comparison.with(|c| c.models.clone());
                            let cells: Vec<_> = r.models.iter().zip(names).map(|(cell, name)| match cell {
                                Some(c) => {
                                    let d = c.diff.as_ref().map(|d| by.of(d)).filter(|d| !d.is_nan());
                                    view! {
                                        <td class="num" data-model=name data-model-score=format!("{}", by.of(&c.scores))>
                                            {fmt(by.of(&c.scores))}
                                            {d.map(|d| view! { <span class=diff_class(d)>{format!("{d:+.3}")}</span> })}
                                        </td>
                                    }.into_any()
                                }
                                None => view! { <td class="num" data-model=name>"—"</td> }.into_any(),
                            }).collect();
                            view! {
                                <tr data-testid="condition-row" data-dimension=r.dimension.key() data-group=r.group.clone()
                                    class:active=active class:small=small
                                    title=if small { "Few pixels or a single scene: too small to trust" } else { "Click to show these pixels and the worst tile" }
                                    on:click=move |_| focus(cond.clone())>
                                    <td><span class="dim">{r.dimension.title()}</span>" "{r.group.clone()}{small.then_some(" ⚠")}</td>
                                    {cells}
                                    <td class="num">{pixels}</td>
                                    <td class="num">{scenes_n}</td>
                                </tr>
                            }
                        }).collect::<Vec<_>>()
                    }}
                </tbody>
            </table>
            {move || {
                // The chart shows the dimension picked in "Show", else the worst row's.
                let rows = rows.get();
                let dim = only.get().or_else(|| rows.first().map(|r| r.dimension))?;
                let svg = comparison.with(|c| plots::scores_svg(dim, &rows, &c.models, rank.get())).ok()?;
                Some(view! { <div class="plot" data-testid="scores-chart" inner_html=svg></div> })
            }}
            <details class="classes">
                <summary>"Per reference class: precision, recall, F1"</summary>
                {move || breakdown.with(|b| b.iter().map(|(a, classes)| view! {
                    <h3>{a.model().to_string()}</h3>
                    <table class="condition-table">
                        <tr><th>"class"</th><th class="num">"precision"</th><th class="num">"recall"</th><th class="num">"F1"</th><th class="num">"pixels"</th></tr>
                        {classes.iter().filter(|c| c.support > 0 || c.predicted > 0).map(|c| view! {
                            <tr data-testid="class-row"><td>{format!("{} {}", c.chart.name(), c.name)}</td><td class="num">{fmt(c.precision)}</td><td class="num">{fmt(c.recall)}</td><td class="num">{fmt(c.f1)}</td><td class="num">{c.support}</td></tr>
                        }).collect::<Vec<_>>()}
                    </table>
                    {a.confusion_tables().into_iter().filter_map(|t| {
                        let names: Vec<String> = (0..=t.chart.n_classes() as u8).map(|c| class_name(t.chart, c as usize)).collect();
                        plots::confusion_svg(&t, &names).ok()
                    }).map(|svg| view! { <div class="plot" data-testid="confusion-chart" inner_html=svg></div> }).collect::<Vec<_>>()}
                }).collect::<Vec<_>>())}
            </details>
            <DatasetBars scenes=scenes />
            {move || (models.with(|m| m.len()) > 1).then(|| view! { <p class="hint">"Differences are against the first model loaded."</p> })}
        </section>
    }
}

/// How the loaded scenes are distributed over service, region, month, year and mission.
#[component]
fn DatasetBars(scenes: RwSignal<Vec<Arc<Scene>>>) -> impl IntoView {
    move || {
        let metas: Vec<_> = scenes.with(|v| v.iter().map(|s| s.meta.clone()).collect());
        let charts: Vec<_> = dataset_histograms(&metas)
            .into_iter()
            .filter_map(|(dim, groups)| plots::histogram_svg(dim, &groups).ok())
            .map(
                |svg| view! { <div class="plot" data-testid="dataset-chart" inner_html=svg></div> },
            )
            .collect();
        view! {
            <details class="dataset">
                <summary>{format!("Loaded scenes ({})", metas.len())}</summary>
                {charts}
            </details>
        }
    }
}
