//! The dataset atlas: the training and test sets of a whole dataset from their file names,
//! side by side, with the class balance per group and the reweighting that makes training
//! follow the test distribution. The page ships the real AI4Arctic lists (see
//! `assets/datasets/NOTICE.md`); a researcher can give their own lists, a folder's names
//! (the directory picker lists them without reading a byte) and a class pixel table.
//!
//! Every number comes from `icelens_core::dataset`, the code behind `icelens dataset`, so the
//! page and the command line agree to the last digit; the weights feed fine-tuning's
//! "follow the test set" (`components/training.rs`).

use std::sync::Arc;

use icelens_core::dataset::{names_from_listing, parse_names, ClassPixels, Facet};
use icelens_core::render::css_colour;
use icelens_core::Chart;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::files::{file_list, read_file};
use crate::state::atlas::Names;
use crate::state::AppState;

/// Largest list or table read (the real table is 250 kB).
const MAX_LIST_BYTES: f64 = 32.0 * 1024.0 * 1024.0;

/// Which set a list is for.
#[derive(Clone, Copy, PartialEq)]
enum ListFor {
    Train,
    Test,
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

#[component]
pub fn AtlasPanel() -> impl IntoView {
    let AppState {
        atlas: state,
        errors,
        story,
        panel,
        ..
    } = expect_context();
    // A presented story step that shows the atlas opens it.
    let show = Signal::derive(move || story.presenting.get() && panel.get() == "atlas");
    let details: NodeRef<leptos::html::Details> = NodeRef::new();
    // Directory pickers (the attribute has no typed setter in the view macro).
    let (train_folder, test_folder): (NodeRef<leptos::html::Input>, NodeRef<leptos::html::Input>) =
        (NodeRef::new(), NodeRef::new());
    Effect::new(move |_| {
        for input in [train_folder.get(), test_folder.get()]
            .into_iter()
            .flatten()
        {
            input.set_webkitdirectory(true);
        }
    });
    Effect::new(move |_| {
        if let (true, Some(el)) = (show.get(), details.get()) {
            let _ = js_sys::Reflect::set(&el, &"open".into(), &true.into());
        }
    });
    let facet = RwSignal::new(Facet::Service);
    let chart = RwSignal::new(Chart::SOD);
    let busy = RwSignal::new(false);
    let report = move |r: Result<(), String>| {
        if let Err(e) = r {
            errors.update(|v| v.push(e));
        }
    };
    let shipped = move || {
        busy.set(true);
        spawn_local(async move {
            report(state.load_shipped().await);
            busy.set(false);
        });
    };
    // The real dataset the first time the atlas is opened, unless lists were given already.
    let opened = move |ev: leptos::ev::Event| {
        let open = ev
            .target()
            .and_then(|t| js_sys::Reflect::get(&t, &"open".into()).ok())
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if open && state.train.with_untracked(Option::is_none) && !busy.get_untracked() {
            shipped();
        }
    };
    let set_names = move |set: ListFor, names: Names| match set {
        ListFor::Train => state.train.set(names),
        ListFor::Test => state.test.set(names),
    };
    // A list file (JSON or text), read whole; a bad one leaves the previous list in place.
    let on_list = move |set: ListFor, ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let files = file_list(input.files());
        input.set_value("");
        spawn_local(async move {
            for file in files {
                let name = file.name();
                let result = async {
                    if file.size() > MAX_LIST_BYTES {
                        return Err(format!(
                            "{name}: is {:.0} MB, more than a list of names holds",
                            file.size() / 1e6
                        ));
                    }
                    let bytes = read_file(&file).await?;
                    parse_names(&name, &bytes).map_err(|e| e.to_string())
                }
                .await;
                match result {
                    Ok(names) => set_names(set, Some((name, Arc::new(names)))),
                    Err(e) => errors.update(|v| v.push(e)),
                }
            }
        });
    };
    // A folder from the directory picker: only the names of its files are used.
    let on_folder = move |set: ListFor, ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let files = file_list(input.files());
        input.set_value("");
        let folder = files
            .first()
            .and_then(|f| {
                let path: String = js_sys::Reflect::get(f, &"webkitRelativePath".into())
                    .ok()?
                    .as_string()?;
                path.split('/').next().map(str::to_string)
            })
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "the folder".into());
        match names_from_listing(&folder, files.iter().map(|f| f.name())) {
            Ok(names) => set_names(set, Some((format!("{folder}/"), Arc::new(names)))),
            Err(e) => errors.update(|v| v.push(e.to_string())),
        }
    };
    let on_pixels = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let files = file_list(input.files());
        input.set_value("");
        spawn_local(async move {
            for file in files {
                let name = file.name();
                let result = async {
                    if file.size() > MAX_LIST_BYTES {
                        return Err(format!(
                            "{name}: is {:.0} MB, more than a class pixel table of a dataset holds",
                            file.size() / 1e6
                        ));
                    }
                    let bytes = read_file(&file).await?;
                    ClassPixels::parse(&name, &bytes).map_err(|e| e.to_string())
                }
                .await;
                match result {
                    Ok(p) => state.pixels.set(Some((name, Arc::new(p)))),
                    Err(e) => errors.update(|v| v.push(e)),
                }
            }
        });
    };
    let export = move |json: bool| {
        let Some(a) = state.atlas.get_untracked() else {
            return;
        };
        if json {
            if let Ok(text) = serde_json::to_string_pretty(a.as_ref()) {
                crate::browser::files::download(
                    "icelens-atlas.json",
                    "application/json",
                    text.as_bytes(),
                );
            }
        } else {
            crate::browser::files::download("icelens-atlas.csv", "text/csv", a.to_csv().as_bytes());
        }
    };
    let list_label = move |names: Names, what: &str| match names {
        Some((source, n)) => format!("{} {what} scenes · {source}", n.len()),
        None => format!("no {what} list"),
    };

    view! {
        <details class="atlas" data-testid="atlas" node_ref=details on:toggle=opened>
            <summary>"Dataset atlas: training against test"</summary>
            <p class="hint">"The distributions of a whole dataset from its file names alone: the AI4Arctic challenge's 512 training and 20 test scenes, or your own lists. The weight of a group (test share / training share) is what fine-tuning draws it with to follow the test set."</p>
            <div class="atlas-inputs">
                <div>
                    <span data-testid="atlas-train-source">{move || list_label(state.train.get(), "training")}</span>
                    <label class="button small">"List…"<input type="file" accept=".json,.txt,.csv" data-testid="atlas-train-list" on:change=move |ev| on_list(ListFor::Train, ev) /></label>
                    <label class="button small">"Folder…"<input type="file" node_ref=train_folder data-testid="atlas-train-folder" on:change=move |ev| on_folder(ListFor::Train, ev) /></label>
                </div>
                <div>
                    <span data-testid="atlas-test-source">{move || list_label(state.test.get(), "test")}</span>
                    <label class="button small">"List…"<input type="file" accept=".json,.txt,.csv" data-testid="atlas-test-list" on:change=move |ev| on_list(ListFor::Test, ev) /></label>
                    <label class="button small">"Folder…"<input type="file" node_ref=test_folder data-testid="atlas-test-folder" on:change=move |ev| on_folder(ListFor::Test, ev) /></label>
                </div>
                <div>
                    <span data-testid="atlas-pixels-source">{move || match state.pixels.get() { Some((source, p)) => format!("class pixels of {} scenes · {source}", p.scenes.len()), None => "no class pixel table".into() }}</span>
                    <label class="button small">"Table…"<input type="file" accept=".csv" data-testid="atlas-pixels" on:change=on_pixels /></label>
                </div>
                <div>
                    <button data-testid="atlas-shipped" disabled=move || busy.get() on:click=move |_| shipped()>"AI4Arctic dataset"</button>
                    <button data-testid="atlas-csv" disabled=move || state.atlas.with(Option::is_none) on:click=move |_| export(false)>"CSV"</button>
                    <button data-testid="atlas-json" disabled=move || state.atlas.with(Option::is_none) on:click=move |_| export(true)>"JSON"</button>
                </div>
            </div>
            <label>"Group by "
                <select data-testid="atlas-facet" on:change=move |ev| facet.set(event_target_value(&ev).parse().unwrap_or(Facet::Service))>
                    {Facet::ALL.iter().map(|f| view! { <option value=f.key()>{f.title()}</option> }).collect::<Vec<_>>()}
                </select>
            </label>
            {move || state.atlas.get().map(|a| {
                let table = a.facet(facet.get()).clone();
                let widest = table.groups.iter().map(|g| g.train_share.max(g.test_share)).fold(0.0, f64::max).max(1e-9);
                view! {
                    <table class="condition-table atlas-table" data-testid="atlas-table">
                        <thead><tr>
                            <th>{facet.get().title()}</th>
                            <th class="num">{format!("training ({})", a.train_scenes)}</th>
                            <th class="num">{format!("test ({})", a.test_scenes)}</th>
                            <th class="share-bars">"share"</th>
                            <th class="num" title="test share − training share">"Δ"</th>
                            <th class="num" title="test share / training share: the sampling weight of the group's training scenes">"weight"</th>
                        </tr></thead>
                        <tbody>
                            {table.groups.iter().map(|g| view! {
                                <tr data-testid="atlas-row" data-group=g.group.clone() data-train=g.train.to_string() data-test=g.test.to_string()
                                    data-weight=g.weight.map(|w| w.to_string()).unwrap_or_default()
                                    data-most-different=g.most_different.to_string() class:marked=g.most_different
                                    title=if g.most_different { "The group whose test share differs most from its training share" } else { "" }>
                                    <td>{g.group.clone()}{g.most_different.then_some(" ◆")}</td>
                                    <td class="num">{g.train}</td>
                                    <td class="num">{g.test}</td>
                                    <td class="share-bars">
                                        <div class="share train" style=format!("width: {:.1}%", 100.0 * g.train_share / widest) title=format!("training {}", pct(g.train_share))></div>
                                        <div class="share test" style=format!("width: {:.1}%", 100.0 * g.test_share / widest) title=format!("test {}", pct(g.test_share))></div>
                                    </td>
                                    <td class="num">{format!("{:+.1}", 100.0 * g.difference)}</td>
                                    <td class="num">{g.weight.map(|w| format!("{w:.2}")).unwrap_or_else(|| "—".into())}</td>
                                </tr>
                            }).collect::<Vec<_>>()}
                        </tbody>
                    </table>
                    <p class="hint atlas-key"><span class="share train"></span>" training  "<span class="share test"></span>" test · Δ in percentage points · ◆ largest difference"</p>
                }
            })}
            {move || state.atlas.get().and_then(|a| a.classes.clone()).map(|classes| {
                let f = facet.get();
                let c = chart.get();
                let rows: Vec<_> = std::iter::once(&classes.overall).chain(classes.groups.iter().filter(|g| g.facet == Some(f))).map(|g| {
                    let balance = g.charts.iter().find(|b| b.chart == c).cloned();
                    let segments: Vec<_> = balance.iter().flat_map(|b| b.shares.iter().enumerate().filter(|(_, s)| **s > 0.0).map(|(k, s)| {
                        let name = c.classes().get(k).copied().unwrap_or("?");
                        view! { <span class="segment" style=format!("width: {:.2}%; background: {}", 100.0 * s, css_colour(c, k as u8)) title=format!("{name}: {}", pct(*s))></span> }
                    }).collect::<Vec<_>>()).collect();
                    view! {
                        <tr data-testid="atlas-class-row" data-group=g.group.clone()
                            data-shares=balance.as_ref().map(|b| b.shares.iter().map(|s| format!("{s}")).collect::<Vec<_>>().join(",")).unwrap_or_default()>
                            <td>{g.group.clone()}</td>
                            <td class="num">{g.scenes}</td>
                            <td class="class-bar">{segments}</td>
                        </tr>
                    }
                }).collect();
                view! {
                    <h3>"Class balance of the training scenes"</h3>
                    <label>"Chart "
                        <select data-testid="atlas-chart" prop:value=move || chart.get().name() on:change=move |ev| chart.set(Chart::from_name(&event_target_value(&ev)).unwrap_or(Chart::SOD))>
                            {Chart::ALL.iter().map(|c| view! { <option value=c.name()>{c.title()}</option> }).collect::<Vec<_>>()}
                        </select>
                    </label>
                    <table class="condition-table atlas-classes">
                        <thead><tr><th>"group"</th><th class="num">"scenes"</th><th>"labelled pixels by class"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <ul class="atlas-legend">
                        {c.classes().iter().enumerate().map(|(k, name)| view! { <li><span class="swatch" style=format!("background: {}", css_colour(c, k as u8))></span>{name.to_string()}</li> }).collect::<Vec<_>>()}
                    </ul>
                    {(!classes.train_without_counts.is_empty()).then(|| view! { <p class="hint">{format!("{} training scenes have no row in the table.", classes.train_without_counts.len())}</p> })}
                }
            })}
        </details>
    }
}
