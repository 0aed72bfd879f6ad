//! Scores equal scikit-learn's on the fixture scenes (shared/reference/scene_reference.json).

mod common;

use common::*;
use icelens_core::metrics::{confusions, Confusion, Scores};
use icelens_core::Chart;

#[test]
fn scores_equal_the_reference_per_scene_and_pooled() {
    let json: serde_json::Value =
        serde_json::from_slice(&reference_bytes("scene_reference.json")).unwrap();
    let mut pooled: [Confusion; 3] = Default::default();
    for name in &FIXTURES[..2] {
        let (scene, pred) = fixture_with_reference_pred(name);
        let conf = confusions(
            scene.charts.as_ref().unwrap(),
            [&pred[0], &pred[1], &pred[2]],
        );
        let s = Scores::from_confusions(&conf);
        let want = &json["scenes"][name]["scores_this_scene"];
        for chart in Chart::ALL {
            assert_eq!(
                s.get(chart),
                want[chart.name()].as_f64().unwrap(),
                "{name} {chart}"
            );
        }
        assert_eq!(s.combined, want["combined"].as_f64().unwrap(), "{name}");
        for (p, c) in pooled.iter_mut().zip(&conf) {
            p.merge(c);
        }
    }
    let s = Scores::from_confusions(&pooled);
    let want = &json["scores_all_labelled_scenes_pooled"];
    assert_eq!(s.SIC, want["SIC"].as_f64().unwrap());
    assert_eq!(s.SOD, want["SOD"].as_f64().unwrap());
    assert_eq!(s.FLOE, want["FLOE"].as_f64().unwrap());
    assert_eq!(s.combined, want["combined"].as_f64().unwrap());
}
