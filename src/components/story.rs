//! Stories in the page: capture views as steps, caption and reorder them, save and load them
//! as JSON, and present them full screen, driven by the keyboard.
//!
//! A step is applied by setting the same page signals a user sets by hand (scene, model,
//! layer, opacity, SAR view, swipe, zoom and centre, side panel), with the exact values it
//! was captured with, so a replayed step draws the picture it was captured from. The format
//! and its checks live in `icelens_core::story`.

use std::sync::Arc;
use std::time::Duration;

use icelens_core::render::SarView;
use icelens_core::story::{self, Point, Step, Story};
use icelens_core::Scene;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::browser::files::download;
use crate::browser::files::{file_list, read_file};
use crate::browser::js::field;
use crate::layers::Layer;
use crate::model::Model;
use crate::view::ViewState;

/// The story shipped with the page, over the demo scene and model.
pub const DEMO_STORY: &str = "assets/demo/story.json";
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

/// The page state a step reads when captured and sets when applied.
#[derive(Clone, Copy)]
pub struct PageState {
    pub scenes: RwSignal<Vec<Arc<Scene>>>,
    pub current: RwSignal<usize>,
    pub models: RwSignal<Vec<Arc<Model>>>,
    pub model_index: RwSignal<usize>,
    pub layer: RwSignal<Layer>,
    pub opacity: RwSignal<u32>,
    pub sar_view: RwSignal<SarView>,
    pub view: ViewState,
    /// Which side panel a presented step shows (`legend`, `conditions`, `training`, ...).
    pub panel: RwSignal<String>,
    pub errors: RwSignal<Vec<String>>,
}

/// The story and where the presentation stands.
#[derive(Clone, Copy)]
pub struct StoryState {
    pub story: RwSignal<Story>,
    /// The step shown last, counted from 0.
    pub index: RwSignal<Option<usize>>,
    pub presenting: RwSignal<bool>,
    /// Caption, counter and legend hidden (key `h`): only the picture is left.
    pub bare: RwSignal<bool>,
    /// Whether presenting took the screen, so leaving full screen (the browser's own Escape)
    /// also leaves the presentation.
    fullscreen: RwSignal<bool>,
}

impl Default for StoryState {
    fn default() -> Self {
        Self::new()
    }
}

/// The key the page's SAR select uses for a view, as stories store it.
pub fn sar_key(v: SarView) -> &'static str {
    match v {
        SarView::HH => "HH",
        SarView::HV => "HV",
        SarView::FalseColour => "FC",
    }
}

/// The SAR view of a select or story key; anything unknown is HH.
pub fn sar_from_key(k: &str) -> SarView {
    match k {
        "HV" => SarView::HV,
        "FC" => SarView::FalseColour,
        _ => SarView::HH,
    }
}

/// Sets a signal only when the value changes: every set redraws what depends on it, and a
/// layer redraw of a large scene is not free.
fn set_if<T: PartialEq + Send + Sync + 'static>(s: RwSignal<T>, v: T) {
    if s.with_untracked(|old| *old != v) {
        s.set(v);
    }
}

impl PageState {
    /// The view on screen as a step with an empty caption.
    pub fn capture(&self) -> Step {
        let (x, y) = self.view.center.get_untracked();
        let current = self.current.get_untracked();
        let model_index = self.model_index.get_untracked();
        Step {
            caption: String::new(),
            scene: self
                .scenes
                .with_untracked(|v| v.get(current).map(|s| s.meta.scene.clone())),
            model: self
                .models
                .with_untracked(|v| v.get(model_index).map(|m| m.name.clone())),
            layer: self.layer.get_untracked().key(),
            opacity: self.opacity.get_untracked().min(100),
            sar: sar_key(self.sar_view.get_untracked()).into(),
            swipe: self.view.swipe.get_untracked(),
            zoom: self.view.zoom.get_untracked(),
            center: Point { x, y },
            panel: self.panel.get_untracked(),
        }
    }

    /// Shows the loaded scene of short name `name` at the zoom and centre given: at once when
    /// it is on screen at its size, else once the viewer has drawn it (it restores the view
    /// then). `None` when no loaded scene has the name. Stories and links both show scenes
    /// this way.
    pub fn show_scene(&self, name: &str, target: Option<(f64, (f64, f64))>) -> Option<()> {
        let (i, size) = self.scenes.with_untracked(|v| {
            v.iter()
                .position(|s| s.meta.scene == name)
                .map(|i| (i, (v[i].lines, v[i].samples)))
        })?;
        if self.current.get_untracked() == i && self.view.scene_size.get_untracked() == size {
            if let Some((z, (x, y))) = target {
                self.view.focus(y, x, z);
            }
        } else {
            self.view.restore.set(target);
            self.current.set(i);
        }
        Some(())
    }

    /// Shows step `n` (counted from 1, for messages). A scene or model that is not loaded is
    /// reported in the error list; the rest of the step still applies.
    pub fn apply(&self, step: &Step, n: usize) {
        let view = self.view;
        let target = (step.zoom, (step.center.x, step.center.y));
        // Whether the zoom and centre wait for a scene to appear (as a link's view does).
        let mut deferred = false;
        if let Some(name) = &step.scene {
            // Shown (now or once drawn) or reported: the view is not set again below.
            deferred = true;
            if self.show_scene(name, Some(target)).is_none() {
                self.errors.update(|e| {
                    e.push(format!(
                        "story step {n}: scene {name} is not loaded; open it to show this step"
                    ))
                });
            }
        }
        if !deferred {
            view.focus(target.1 .1, target.1 .0, target.0);
        }
        if let Some(name) = &step.model {
            match self
                .models
                .with_untracked(|v| v.iter().position(|m| m.name == *name))
            {
                Some(i) => set_if(self.model_index, i),
                None => self.errors.update(|e| {
                    e.push(format!(
                        "story step {n}: model {name} is not loaded; open it to show this step"
                    ))
                }),
            }
        }
        set_if(self.layer, Layer::from_key(&step.layer));
        set_if(self.opacity, step.opacity.min(100));
        set_if(self.sar_view, sar_from_key(&step.sar));
        set_if(view.swipe, step.swipe.map(|s| s.clamp(0.0, 1.0)));
        set_if(self.panel, step.panel.clone());
    }
}

/// Calls a method of `target` by name and lets a returned promise settle quietly: browsers
/// refuse full screen in many situations (headless, no user gesture), which is no error here.
fn call_quietly(target: &JsValue, method: &str) {
    let Some(f) = field(target, method).and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else {
        return;
    };
    if let Ok(result) = f.call0(target) {
        if let Ok(promise) = result.dyn_into::<js_sys::Promise>() {
            spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            });
        }
    }
}

fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

/// Tells the viewer to measure itself again after the layout changed around it.
fn remeasure() {
    set_timeout(
        || {
            if let Some(w) = web_sys::window() {
                if let Ok(ev) = web_sys::Event::new("resize") {
                    let _ = w.dispatch_event(&ev);
                }
            }
        },
        Duration::from_millis(30),
    );
}

impl StoryState {
    pub fn new() -> Self {
        StoryState {
            story: RwSignal::new(Story::default()),
            index: RwSignal::new(None),
            presenting: RwSignal::new(false),
            bare: RwSignal::new(false),
            fullscreen: RwSignal::new(false),
        }
    }

    pub fn len(&self) -> usize {
        self.story.with_untracked(|s| s.steps.len())
    }

    /// Replaces the story with a file's; a bad file is reported and the story stays.
    pub fn load(&self, page: PageState, name: &str, bytes: &[u8]) {
        match Story::from_json(name, bytes) {
            Ok(s) => {
                self.story.set(s);
                self.index.set(None);
            }
            Err(e) => page.errors.update(|v| v.push(e.to_string())),
        }
    }

    /// Shows step `i` (clamped to the story).
    pub fn go(&self, page: PageState, i: usize) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let i = i.min(n - 1);
        let step = self.story.with_untracked(|s| s.steps[i].clone());
        self.index.set(Some(i));
        page.apply(&step, i + 1);
    }

    fn step_by(&self, page: PageState, delta: isize) {
        let i = self.index.get_untracked().unwrap_or(0) as isize + delta;
        self.go(page, i.max(0) as usize);
    }

    /// Enters presentation mode at the first step, full screen when the browser allows it.
    pub fn present(&self, page: PageState) {
        if self.len() == 0 {
            page.errors
                .update(|e| e.push("the story has no steps yet: capture a view first".into()));
            return;
        }
        // The Present button keeps the focus otherwise, and Space would press it again.
        if let Some(el) = document()
            .and_then(|d| d.active_element())
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.blur();
        }
        self.bare.set(false);
        self.presenting.set(true);
        self.go(page, 0);
        if let Some(root) = document().and_then(|d| d.document_element()) {
            self.fullscreen.set(true);
            call_quietly(&root, "requestFullscreen");
        }
        remeasure();
    }

    /// Back to the normal layout, leaving full screen.
    pub fn leave(&self) {
        self.presenting.set(false);
        self.bare.set(false);
        self.fullscreen.set(false);
        if let Some(d) = document() {
            if field(&d, "fullscreenElement").is_some() {
                call_quietly(&d, "exitFullscreen");
            }
        }
        remeasure();
    }

    /// The presentation's keys. Listened for on the window in the capture phase, so that the
    /// viewer's own arrow keys (panning) never see them while presenting.
    fn on_key(&self, page: PageState, ev: &web_sys::KeyboardEvent) {
        if !self.presenting.get_untracked() || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "ArrowRight" | "ArrowDown" | " " | "PageDown" | "Enter" => self.step_by(page, 1),
            "ArrowLeft" | "ArrowUp" | "PageUp" | "Backspace" => self.step_by(page, -1),
            "Home" => self.go(page, 0),
            "End" => self.go(page, self.len().saturating_sub(1)),
            "Escape" => self.leave(),
            "h" | "H" => self.bare.update(|b| *b = !*b),
            _ => return,
        }
        ev.prevent_default();
        ev.stop_propagation();
    }

    /// Listens for the presentation's keys and for the browser leaving full screen. The
    /// page is mounted once, so the listeners live as long as it.
    fn listen(&self, page: PageState) {
        let (Some(window), Some(doc)) = (web_sys::window(), document()) else {
            return;
        };
        let st = *self;
        let keys =
            Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(move |ev: web_sys::KeyboardEvent| {
                st.on_key(page, &ev)
            });
        let _ = window.add_event_listener_with_callback_and_bool(
            "keydown",
            keys.as_ref().unchecked_ref(),
            true,
        );
        keys.forget();
        let change = Closure::<dyn Fn()>::new(move || {
            let doc: JsValue = match document() {
                Some(d) => d.into(),
                None => return,
            };
            if field(&doc, "fullscreenElement").is_none()
                && st.fullscreen.get_untracked()
                && st.presenting.get_untracked()
            {
                st.leave();
            }
        });
        let _ = doc
            .add_event_listener_with_callback("fullscreenchange", change.as_ref().unchecked_ref());
        change.forget();
    }
}

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
pub fn StoryPanel(page: PageState, story: StoryState) -> impl IntoView {
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
pub fn StoryOverlay(story: StoryState) -> impl IntoView {
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
