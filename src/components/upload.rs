//! The upload package button, and the package's progress while its scenes run (what the
//! package is and how it is written: `src/package.rs`).

use leptos::prelude::*;

use crate::package::{package_scenes, PackageRequest, FILE_NAME};
use crate::state::AppState;

/// The button, and the package's progress while its scenes run.
#[component]
pub fn PackageButton() -> impl IntoView {
    let AppState {
        scenes,
        model,
        package_request: request,
        backend,
        runs,
        ..
    } = expect_context();
    // Scenes of the package already predicted.
    let done = Signal::derive(move || {
        let b = backend.get().key();
        request.with(|p| {
            p.as_ref().map_or(0, |p| {
                runs.with(|r| {
                    p.files
                        .iter()
                        .filter(|f| r.contains_key(&((*f).clone(), p.model.clone(), b)))
                        .count()
                })
            })
        })
    });
    // (file, scene name, labelled) of each scene the package would hold.
    let chosen = Memo::new(move |_| {
        scenes.with(|v| {
            package_scenes(v)
                .iter()
                .map(|s| (s.file.clone(), s.meta.scene.clone(), s.has_charts()))
                .collect::<Vec<_>>()
        })
    });
    let label = move || {
        let n = chosen.with(Vec::len);
        let test = chosen.with(|c| c.iter().all(|s| !s.2));
        let what = if test { "test scene" } else { "scene" };
        format!(
            "Upload package ({n} {what}{})",
            if n == 1 { "" } else { "s" }
        )
    };
    let title = move || {
        let names: Vec<String> = chosen.with(|c| c.iter().map(|s| s.1.clone()).collect());
        format!(
            "Predict {} with the model shown and download the challenge's upload package ({FILE_NAME})",
            names.join(", ")
        )
    };
    let ask = move |_| {
        let Some(m) = model.get_untracked() else {
            return;
        };
        let files = chosen.with_untracked(|c| c.iter().map(|s| s.0.clone()).collect());
        request.set(Some(PackageRequest {
            model: m.name.clone(),
            files,
        }));
    };
    view! {
        <div class="package">
            <button data-testid="package" title=title
                disabled=move || model.with(Option::is_none) || chosen.with(Vec::is_empty) || request.with(Option::is_some)
                on:click=ask>{label}</button>
            {move || request.get().map(|r| view! {
                <span class="hint" data-testid="package-progress">{format!("{} of {} scenes predicted with {}…", done.get(), r.files.len(), r.model)}</span>
            })}
        </div>
    }
}
