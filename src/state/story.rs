//! The story and where a presentation stands, and the page state a step captures and sets.
//!
//! A step is applied by setting the same page signals a user sets by hand (scene, model,
//! layer, opacity, SAR view, swipe, zoom and centre, side panel), with the exact values it
//! was captured with, so a replayed step draws the picture it was captured from. The format
//! and its checks live in `icelens_core::story`; the panel that edits a story is
//! `components/story.rs`.

use std::sync::Arc;

use icelens_core::render::SarView;
use icelens_core::story::{Point, Step, Story};
use icelens_core::Scene;
use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::browser::js::field;
use crate::browser::screen::{call_quietly, document, remeasure};
use crate::layers::Layer;
use crate::model::Model;
use crate::view::ViewState;

/// The story shipped with the page, over the demo scene and model.
pub const DEMO_STORY: &str = "assets/demo/story.json";

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
            sar: self.sar_view.get_untracked().key().into(),
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
        set_if(self.sar_view, SarView::from_key(&step.sar));
        set_if(view.swipe, step.swipe.map(|s| s.clamp(0.0, 1.0)));
        set_if(self.panel, step.panel.clone());
    }
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
    pub fn listen(&self, page: PageState) {
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
