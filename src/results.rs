//! The page's breakdown by condition: the accumulators of its own runs, and the result files
//! (`icelens evaluate --partial`, `merge --out`) loaded beside them, pooled as `icelens merge`
//! pools them. The page state computes it; "Where is it worst" shows it.

use std::sync::Arc;

use icelens_core::breakdown::{merge_partials, Accumulator, ClassRow, Partial, PartialError};
use icelens_core::{Chart, Scene};

use crate::inference::{Model, Run};

/// Every model's accumulator over the labelled scenes it has run on, in model order.
pub fn accumulate(
    scenes: &[Arc<Scene>],
    models: &[Arc<Model>],
    run_of: impl Fn(&Scene, &Model) -> Option<Arc<Run>>,
) -> Vec<(Accumulator, Vec<ClassRow>)> {
    models
        .iter()
        .map(|m| {
            let mut acc = Accumulator::all(m.name.clone());
            for s in scenes.iter().filter(|s| s.has_charts()) {
                if let Some(r) = run_of(s, m) {
                    let p = &r.prediction;
                    // A scene name given twice is refused by the accumulator; it is the
                    // same data, so skipping it is right.
                    let _ = acc.add_scene(
                        s,
                        [
                            p.chart(Chart::SIC),
                            p.chart(Chart::SOD),
                            p.chart(Chart::FLOE),
                        ],
                    );
                }
            }
            let classes = acc.class_rows();
            (acc, classes)
        })
        .collect()
}

/// Adds a result file (`evaluate --partial`, `merge --out`) to those loaded, if it pools with
/// them as `icelens merge` would; a shard still missing is fine (the table waits for it).
pub fn add_result(
    results: &mut Vec<(String, Partial)>,
    name: String,
    part: Partial,
) -> Result<(), String> {
    if results.iter().any(|(n, _)| *n == name) {
        return Err(format!("{name}: is loaded already"));
    }
    let mut with = results.clone();
    with.push((name, part));
    match merge_partials(&with) {
        Ok(_) | Err(PartialError::MissingShard { .. }) => {
            *results = with;
            Ok(())
        }
        Err(e) => Err(format!(
            "{e} (\"Clear loaded results\" in \"Where is it worst\" starts another set)"
        )),
    }
}

/// The loaded results pooled, one accumulator per model, named apart from the page's own
/// runs; nothing while a shard is missing.
pub fn loaded(results: &[(String, Partial)]) -> Vec<(Accumulator, Vec<ClassRow>)> {
    if results.is_empty() {
        return vec![];
    }
    let Ok(merged) = merge_partials(results) else {
        return vec![];
    };
    merged
        .models
        .into_iter()
        .map(|m| {
            let mut acc = m.accumulator;
            acc.set_model(format!("{} (loaded)", m.name));
            let classes = acc.class_rows();
            (acc, classes)
        })
        .collect()
}

/// One line on the loaded results: what they hold, or what is still missing.
pub fn results_status(results: &[(String, Partial)]) -> Option<String> {
    if results.is_empty() {
        return None;
    }
    let files: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    let files = files.join(", ");
    Some(match merge_partials(results) {
        Ok(m) => {
            let models: Vec<&str> = m.models.iter().map(|x| x.name.as_str()).collect();
            let failed = if m.failed.is_empty() {
                String::new()
            } else {
                format!(", {} could not be scored", m.failed.len())
            };
            format!(
                "Loaded results from {files}: {} scenes{failed}, {}",
                m.scenes.len(),
                models.join(", ")
            )
        }
        Err(e) => format!("Loaded results from {files}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use icelens_core::breakdown::Dimension;
    use icelens_core::shard::Shard;

    fn part(k: usize, model: &str) -> Partial {
        let mut p = Partial::new(Some(Shard::new(k, 3).unwrap()), &Dimension::ALL);
        p.push_model(format!("fp-{model}"), &Accumulator::all(model), &[]);
        p
    }

    #[test]
    fn loaded_results_wait_for_every_shard_and_refuse_another_run() {
        let mut r = vec![];
        add_result(&mut r, "p1.json".into(), part(1, "m.pt")).unwrap();
        add_result(&mut r, "p2.json".into(), part(2, "m.pt")).unwrap();
        assert!(loaded(&r).is_empty(), "a shard is missing");
        let status = results_status(&r).unwrap();
        assert!(
            status.contains("p1.json, p2.json") && status.contains("3/3 is missing"),
            "{status}"
        );
        let e = add_result(&mut r, "p2.json".into(), part(3, "m.pt")).unwrap_err();
        assert!(e.contains("p2.json: is loaded already"), "{e}");
        let e = add_result(&mut r, "again.json".into(), part(1, "m.pt")).unwrap_err();
        assert!(
            e.contains("again.json") && e.contains("Clear loaded results"),
            "{e}"
        );
        let e = add_result(&mut r, "other.json".into(), part(3, "n.pt")).unwrap_err();
        assert!(e.contains("other.json"), "{e}");
        assert_eq!(r.len(), 2, "refused parts are not kept");
        add_result(&mut r, "p3.json".into(), part(3, "m.pt")).unwrap();
        let l = loaded(&r);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].0.model(), "m.pt (loaded)");
        assert!(results_status(&r).unwrap().contains("0 scenes, m.pt"));
    }
}
