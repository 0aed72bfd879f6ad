//! The challenge's upload package from the page: every loaded test-style scene predicted
//! with the chosen model and written as `icelens predict --upload` writes it (the same
//! `icelens_core::upload` code, so the two files are equal byte for byte on the CPU path).
//!
//! The predictions come from the page's one run loop (`actions.rs`), with its progress bar
//! and Cancel button: asking for a package puts its scenes first in that loop, and the
//! package is written once every run is there. The button is `components/upload.rs`.

use std::sync::Arc;

use icelens_core::upload::write_upload;
use icelens_core::Scene;

use crate::inference::{Model, Run};

/// The name the download gets.
pub const FILE_NAME: &str = "upload_package.nc";

/// A package asked for: the model (by name) and the scenes (by file), in load order.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRequest {
    pub model: String,
    pub files: Vec<String>,
}

/// The scenes a package holds: the test-style scenes (without ice charts), as the challenge's
/// test set is; when every loaded scene has charts, all of them.
pub fn package_scenes(scenes: &[Arc<Scene>]) -> Vec<Arc<Scene>> {
    let test: Vec<Arc<Scene>> = scenes.iter().filter(|s| !s.has_charts()).cloned().collect();
    if test.is_empty() {
        scenes.to_vec()
    } else {
        test
    }
}

/// The runs a package needs, for the run loop.
pub fn jobs(
    req: &PackageRequest,
    scenes: &[Arc<Scene>],
    models: &[Arc<Model>],
) -> Vec<(Arc<Scene>, Arc<Model>)> {
    let Some(m) = models.iter().find(|m| m.name == req.model) else {
        return vec![];
    };
    req.files
        .iter()
        .filter_map(|f| scenes.iter().find(|s| s.file == *f))
        .map(|s| (s.clone(), m.clone()))
        .collect()
}

/// Where one scene's run stands.
pub enum RunState {
    Done(Arc<Run>),
    Failed,
    Waiting,
}

/// Where the package stands.
pub enum Outcome {
    Waiting,
    Ready(Vec<u8>),
    Failed(String),
}

/// The package's bytes once every run is done; a failed (or cancelled) run drops it.
pub fn ready(
    req: &PackageRequest,
    scenes: &[Arc<Scene>],
    state_of: impl Fn(&Scene) -> RunState,
) -> Outcome {
    let mut runs = Vec::with_capacity(req.files.len());
    for f in &req.files {
        let Some(s) = scenes.iter().find(|s| s.file == *f) else {
            return Outcome::Failed(format!("upload package: {f} is no longer loaded"));
        };
        match state_of(s) {
            RunState::Done(r) => runs.push((s.clone(), r)),
            RunState::Failed => {
                return Outcome::Failed(format!(
                    "upload package not written: {} could not be predicted with {} (cancelled, or see the error above)",
                    s.meta.scene, req.model
                ))
            }
            RunState::Waiting => return Outcome::Waiting,
        }
    }
    let entries: Vec<_> = runs
        .iter()
        .map(|(s, r)| r.prediction.upload_scene(s))
        .collect();
    match write_upload(FILE_NAME, &entries) {
        Ok(bytes) => Outcome::Ready(bytes),
        Err(e) => Outcome::Failed(format!("upload package: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use icelens_core::synth::{generate, SynthSpec};
    use icelens_core::{read_scene, Chart, ReadLimits};
    use icelens_model::{Architecture, Kind, Prediction, SicHead};

    use crate::inference::Backend;

    fn scene(stamp: &str, labelled: bool) -> Arc<Scene> {
        let mut spec = SynthSpec::new(50, 60, 3);
        spec.stamp = stamp.into();
        spec.labelled = labelled;
        let bytes = generate(&spec).to_netcdf().unwrap();
        Arc::new(read_scene(&spec.file_name(), bytes, &ReadLimits::default()).unwrap())
    }

    fn run(s: &Scene, class: u8) -> Arc<Run> {
        let arch = Architecture::fresh(&[8, 16], SicHead::Classification, Kind::Plain).unwrap();
        let mut prediction = Prediction::empty(s.lines, s.samples, &arch).unwrap();
        for c in &mut prediction.classes {
            c.fill(class);
        }
        Arc::new(Run {
            prediction,
            scores: None,
            backend: Backend::Cpu,
            seconds: 0.0,
            threads: 1,
        })
    }

    #[test]
    fn a_package_holds_the_test_style_scenes_or_else_all() {
        let a = scene("20210101T101500", true);
        let b = scene("20210102T101500", false);
        let c = scene("20210103T101500", false);
        let all = vec![a.clone(), b.clone(), c.clone()];
        let files = |v: Vec<Arc<Scene>>| v.iter().map(|s| s.file.clone()).collect::<Vec<_>>();
        assert_eq!(files(package_scenes(&all)), files(vec![b, c]));
        assert_eq!(
            files(package_scenes(std::slice::from_ref(&a))),
            files(vec![a])
        );
    }

    #[test]
    fn the_package_waits_for_every_run_and_is_what_predict_writes() {
        let (a, b) = (
            scene("20210102T101500", false),
            scene("20210103T101500", false),
        );
        let scenes = vec![a.clone(), b.clone()];
        let req = PackageRequest {
            model: "m.pt".into(),
            files: vec![b.file.clone(), a.file.clone()],
        };
        let (ra, rb) = (run(&a, 2), run(&b, 5));
        let waiting = ready(&req, &scenes, |s| {
            if s.file == a.file {
                RunState::Done(ra.clone())
            } else {
                RunState::Waiting
            }
        });
        assert!(matches!(waiting, Outcome::Waiting));
        let failed = ready(&req, &scenes, |s| {
            if s.file == a.file {
                RunState::Done(ra.clone())
            } else {
                RunState::Failed
            }
        });
        assert!(matches!(failed, Outcome::Failed(e) if e.contains(&b.meta.scene)));
        let Outcome::Ready(bytes) = ready(&req, &scenes, |s| {
            RunState::Done(if s.file == a.file {
                ra.clone()
            } else {
                rb.clone()
            })
        }) else {
            panic!("every run is done")
        };
        // In the order asked for, through the same writer as `icelens predict`.
        let want = write_upload(
            FILE_NAME,
            &[
                rb.prediction.upload_scene(&b),
                ra.prediction.upload_scene(&a),
            ],
        )
        .unwrap();
        assert_eq!(bytes, want);
        assert_eq!(
            rb.prediction.upload_scene(&b).charts[Chart::SOD as usize][0],
            5
        );
        let gone = PackageRequest {
            model: "m.pt".into(),
            files: vec!["other.nc".into()],
        };
        assert!(
            matches!(ready(&gone, &scenes, |_| RunState::Waiting), Outcome::Failed(e) if e.contains("other.nc"))
        );
    }
}
