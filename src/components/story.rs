//! The "Story" panel: capture views as steps, caption and reorder them, save and load them as
//! JSON, present them; and the caption shown over the picture while presenting. The state
//! and its actions are `crate::state::story`.

use icelens_core::story::{self, Step, Story};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::files::download;
use crate::browser::files::{file_list, read_file};
use crate::state::AppState;

/// The file name a saved story gets.
const SAVE_NAME: &str = "icelens-story.json";
/// Side panels a step can show beside the picture while presenting. Other names (from a
/// newer page) are kept in the step and fall back to the legend.
const PANELS: [(&str, &str); 4] = [
    ("legend", "Legend"),
    ("conditions", "Where is it worst"),
    ("training", "Fine-tuning"),
    ("atlas", "Dataset atlas"),
];

/// A step's one-line summary in the list: what it shows, beside its caption.
fn summary(step: &Step) -> String {
    let mut s = format!("{} · {:.0} %", step.layer, step.zoom * 100.0);
    if step.swipe.is_some() {
        s += " · swipe";
    }
    if step.panel != "legend" {
        s += &format!(" · {}", step.panel);
    }
    s
}

/// The "Story" section of the side bar: capture, list, save, load, present.
#[component]
pub fn StoryPanel() -> impl IntoView {
    let app: AppState = expect_context();
    let (page, story) = (app.page(), app.story);
    story.listen(page);
    let st = story.story;
    let count = move || st.with(|s| s.steps.len());
    let capture = move |_| {
        if count() >= story::MAX_STEPS {
            page.errors
                .update(|e| e.push(format!("a story holds at most {} steps", story::MAX_STEPS)));
            return;
        }
        let step = page.capture();
        st.update(|s| s.steps.push(step));
        story.index.set(Some(count() - 1));
    };
    let save = move |_| {
        let json = st.with_untracked(|s| s.to_json());
        download(SAVE_NAME, "application/json", json.as_bytes());
    };
    let on_load = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        for file in file_list(input.files()) {
            spawn_local(async move {
                let name = file.name();
                match read_file(&file).await {
                    Ok(bytes) => story.load(page, &name, &bytes),
                    Err(e) => page.errors.update(|v| v.push(e)),
                }
            });
        }
        input.set_value("");
    };
    let edit = move |i: usize, f: &dyn Fn(&mut Story)| {
        st.update(|s| {
            if i < s.steps.len() {
                f(s)
            }
        })
    };

    view! {
        <section class="story" data-testid="story">
            <h2>"Story"</h2>
            <input class="story-title" type="text" placeholder="Title of the talk" data-testid="story-title"
                maxlength=story::MAX_NAME.to_string()
                prop:value=move || st.with(|s| s.title.clone())
                on:input=move |ev| { let t = event_target_value(&ev); st.update(|s| s.title = t.chars().take(story::MAX_NAME).collect()) } />
            <div class="story-tools">
                <button data-testid="story-capture" title="Add the view on screen as the last step" on:click=capture>"Capture view"</button>
                <button data-testid="story-present" title="Full screen, keys: → / Space next, ← back, Esc leave, h hide text"
                    disabled=move || count() == 0 on:click=move |_| story.present(page)>"Present"</button>
            </div>
            <ol class="story-steps" data-testid="story-steps">
                <For each=move || 0..count() key=|i| *i let(i)>
                    <li data-testid="story-step" class:active=move || story.index.get() == Some(i)
                        title="Show this step" on:click=move |_| story.go(page, i)>
                        <input type="text" data-testid="story-caption" placeholder="Caption"
                            maxlength=story::MAX_CAPTION.to_string()
                            prop:value=move || st.with(|s| s.steps.get(i).map(|x| x.caption.clone()).unwrap_or_default())
                            on:click=|ev| ev.stop_propagation()
                            on:input=move |ev| {
                                let text: String = event_target_value(&ev).chars().take(story::MAX_CAPTION).collect();
                                edit(i, &|s| s.steps[i].caption = text.clone());
                            } />
                        <span class="story-what">{move || st.with(|s| s.steps.get(i).map(summary).unwrap_or_default())}</span>
                        <span class="story-buttons">
                            <button data-testid="story-up" title="Earlier" on:click=move |ev| { ev.stop_propagation(); edit(i, &|s| { s.move_up(i); }); }>"↑"</button>
                            <button data-testid="story-down" title="Later" on:click=move |ev| { ev.stop_propagation(); edit(i, &|s| { s.move_down(i); }); }>"↓"</button>
                            <button data-testid="story-remove" title="Remove" on:click=move |ev| { ev.stop_propagation(); edit(i, &|s| { s.remove(i); }); story.index.set(None); }>"×"</button>
                        </span>
                    </li>
                </For>
            </ol>
            <label>"Panel "
                <select data-testid="story-panel" title="What a captured step shows beside the picture"
                    prop:value=move || page.panel.get() on:change=move |ev| page.panel.set(event_target_value(&ev))>
                    {PANELS.iter().map(|(k, label)| view! { <option value=*k>{*label}</option> }).collect::<Vec<_>>()}
                </select>
            </label>
            <div class="story-tools">
                <button data-testid="story-save" disabled=move || count() == 0 on:click=save>"Save story"</button>
                <label class="load" title="A story saved from this page (.json)">"Load story…"
                    <input type="file" accept=".json,application/json" data-testid="story-load" on:change=on_load />
                </label>
            </div>
        </section>
    }
}

/// The caption and step counter shown over the picture while presenting.
#[component]
pub fn StoryOverlay() -> impl IntoView {
    let AppState { story, .. } = expect_context();
    let shown = move || {
        let i = story.index.get()?;
        story.story.with(|s| {
            s.steps
                .get(i)
                .map(|st| (st.caption.clone(), format!("{} / {}", i + 1, s.steps.len())))
        })
    };
    move || {
        if !story.presenting.get() {
            return None;
        }
        let (caption, counter) = shown()?;
        let empty = caption.is_empty();
        Some(view! {
            <div class="story-overlay">
                <div class="story-caption" data-testid="story-caption-shown" class:empty=empty>{caption}</div>
                <div class="story-counter" data-testid="story-counter">{counter}</div>
            </div>
        })
    }
}
