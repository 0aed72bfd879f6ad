//! The page's state: every signal a component shows or an action changes, in one `Copy`
//! value given to the components by context (and as props where a component is reused).
//! What happens to it lives in `actions.rs`; what shows it in `components/`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use icelens_core::breakdown::{Accumulator, ClassRow, Condition, Partial};
use icelens_core::render::SarView;
use icelens_core::{Chart, Scene};
use leptos::prelude::*;

use crate::browser::decode;
use crate::inference::{Backend, Model, Run};
use crate::layers::Layer;
use crate::package::PackageRequest;
use crate::results;
use crate::view::ViewState;

pub mod atlas;
pub mod story;

pub use atlas::AtlasState;
pub use story::{PageState, StoryState};

/// (scene file, model name, backend) of a run.
pub type RunKey = (String, String, &'static str);
pub type RunMap = HashMap<RunKey, Arc<Run>>;

#[derive(Clone, Copy)]
pub struct AppState {
    pub scenes: RwSignal<Vec<Arc<Scene>>>,
    /// Index of the scene on screen.
    pub current: RwSignal<usize>,
    pub models: RwSignal<Vec<Arc<Model>>>,
    /// Index of the model shown.
    pub model_index: RwSignal<usize>,
    /// Messages for the user (a dismissed one becomes empty, keeping the others' places).
    pub errors: RwSignal<Vec<String>>,
    /// Files being read or decoded, by name.
    pub loading: RwSignal<Vec<String>>,
    pub file_progress: RwSignal<HashMap<String, decode::Progress>>,
    /// The SAR picture of a scene still being decoded (the last dropped), shown over the
    /// viewport until its scene arrives.
    pub picture_ahead: RwSignal<Option<Arc<decode::Picture>>>,
    pub sar_view: RwSignal<SarView>,
    pub layer: RwSignal<Layer>,
    pub opacity: RwSignal<u32>,
    /// Files are dragged over the page.
    pub dragging: RwSignal<bool>,
    pub gpu_available: RwSignal<bool>,
    pub backend: RwSignal<Backend>,
    /// Every finished run.
    pub runs: RwSignal<RunMap>,
    /// (scene, done, total, started ms) of the run in progress.
    pub progress: RwSignal<Option<(String, usize, usize, f64)>>,
    /// Asks the run in progress to stop after its tile.
    pub cancel: RwSignal<bool>,
    pub view: ViewState,
    /// Pixels of the condition picked in "Where is it worst".
    pub highlight: RwSignal<Option<Arc<Vec<bool>>>>,
    pub selected: RwSignal<Option<Condition>>,
    /// Results loaded from files (`evaluate --partial`, `merge --out`), pooled as `merge` does.
    pub results: RwSignal<Vec<(String, Partial)>>,
    pub atlas: AtlasState,
    /// The upload package asked for: its model and scenes, written once every run is done.
    pub package_request: RwSignal<Option<PackageRequest>>,
    /// Presentation mode: the side panel a step shows, and the story.
    pub panel: RwSignal<String>,
    pub story: StoryState,
    /// Runs that were cancelled or failed: not retried until their scene is picked again.
    pub skipped: RwSignal<HashSet<RunKey>>,
    /// The scene on screen, the model shown and its run there.
    pub scene: Signal<Option<Arc<Scene>>>,
    pub model: Signal<Option<Arc<Model>>>,
    pub run: Signal<Option<Arc<Run>>>,
    /// The run of the model compared against in the "versus" layer: the first loaded, or
    /// the second when the first is the one shown.
    pub other: Signal<Option<Arc<Run>>>,
    /// The breakdown by condition of every model over the labelled scenes it has run on,
    /// then of the loaded results.
    pub breakdown: Memo<Vec<(Accumulator, Vec<ClassRow>)>>,
}

impl AppState {
    pub fn new() -> AppState {
        let scenes: RwSignal<Vec<Arc<Scene>>> = RwSignal::new(vec![]);
        let current = RwSignal::new(0usize);
        let models: RwSignal<Vec<Arc<Model>>> = RwSignal::new(vec![]);
        let model_index = RwSignal::new(0usize);
        let runs: RwSignal<RunMap> = RwSignal::new(HashMap::new());
        let backend = RwSignal::new(Backend::Cpu);
        let results: RwSignal<Vec<(String, Partial)>> = RwSignal::new(vec![]);
        let scene = Signal::derive(move || scenes.with(|s| s.get(current.get()).cloned()));
        let model = Signal::derive(move || models.with(|m| m.get(model_index.get()).cloned()));
        let run_of = move |s: &Scene, name: &str| {
            runs.with(|r| {
                r.get(&(s.file.clone(), name.to_string(), backend.get().key()))
                    .cloned()
            })
        };
        let run = Signal::derive(move || {
            let (s, m) = (scene.get()?, model.get()?);
            run_of(&s, &m.name)
        });
        let other = Signal::derive(move || {
            let (s, m) = (scene.get()?, model.get()?);
            let o = models.with(|v| v.iter().find(|o| o.name != m.name).cloned())?;
            run_of(&s, &o.name)
        });
        // Accumulators have no equality: every recomputation counts as a change.
        let breakdown = Memo::new_with_compare(
            move |_| {
                let b = backend.get().key();
                let mut all = runs.with(|r| {
                    results::accumulate(&scenes.get(), &models.get(), |s, m| {
                        r.get(&(s.file.clone(), m.name.clone(), b)).cloned()
                    })
                });
                all.extend(results.with(|r| results::loaded(r)));
                all
            },
            |_, _| true,
        );
        AppState {
            scenes,
            current,
            models,
            model_index,
            errors: RwSignal::new(vec![]),
            loading: RwSignal::new(vec![]),
            file_progress: RwSignal::new(HashMap::new()),
            picture_ahead: RwSignal::new(None),
            sar_view: RwSignal::new(SarView::HH),
            layer: RwSignal::new(Layer::Chart(Chart::SIC)),
            opacity: RwSignal::new(70),
            dragging: RwSignal::new(false),
            gpu_available: RwSignal::new(false),
            backend,
            runs,
            progress: RwSignal::new(None),
            cancel: RwSignal::new(false),
            view: ViewState::new(),
            highlight: RwSignal::new(None),
            selected: RwSignal::new(None),
            results,
            atlas: AtlasState::new(),
            package_request: RwSignal::new(None),
            panel: RwSignal::new("legend".to_string()),
            story: StoryState::new(),
            skipped: RwSignal::new(HashSet::new()),
            scene,
            model,
            run,
            other,
            breakdown,
        }
    }

    /// What a story step captures and applies.
    pub fn page(&self) -> PageState {
        PageState {
            scenes: self.scenes,
            current: self.current,
            models: self.models,
            model_index: self.model_index,
            layer: self.layer,
            opacity: self.opacity,
            sar_view: self.sar_view,
            view: self.view,
            panel: self.panel,
            errors: self.errors,
        }
    }

    /// The run of a model (by name) on a scene with the backend chosen, if done.
    pub fn run_of(&self, scene: &Scene, model: &str) -> Option<Arc<Run>> {
        let key = (
            scene.file.clone(),
            model.to_string(),
            self.backend.get().key(),
        );
        self.runs.with(|r| r.get(&key).cloned())
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}
