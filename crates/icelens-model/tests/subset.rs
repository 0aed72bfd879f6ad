//! Drawing training patches from part of the data: rectangles, condition masks, reweighting.

use std::sync::Arc;

use icelens_core::breakdown::{condition_mask, Condition, Dimension};
use icelens_core::input::Window;
use icelens_core::synth::{generate, SynthSpec};
use icelens_core::{read_scene, ReadLimits, Scene};
use icelens_model::{
    balance_weights, prepare_from, sample_from, share_weights, Area, ModelError, Source,
    TrainConfig,
};

fn synth_scene(lines: usize, samples: usize, seed: u64) -> Scene {
    let spec = SynthSpec::new(lines, samples, seed);
    let bytes = generate(&spec).to_netcdf().unwrap();
    read_scene(&spec.file_name(), bytes, &ReadLimits::default()).unwrap()
}

/// The input's first channel of a patch, to find where in the scene it came from.
fn locate(scene: &Scene, p: &icelens_model::Patch) -> (usize, usize) {
    let size = p.height;
    for row in 0..=scene.lines - size {
        for col in 0..=scene.samples - size {
            if scene
                .input_window(Window::new(row, col, size, size))
                .unwrap()
                == p.x
            {
                return (row, col);
            }
        }
    }
    panic!("patch not found in the scene");
}

#[test]
fn another_seed_draws_other_patches() {
    let a = synth_scene(120, 110, 1);
    let b = synth_scene(100, 140, 2);
    let sources = [Source::whole(&a), Source::whole(&b)];
    let got = sample_from(&sources, 7, 40, 5).unwrap();
    assert_eq!(got, sample_from(&sources, 7, 40, 5).unwrap());
    assert_ne!(got, sample_from(&sources, 7, 40, 6).unwrap());
}

#[test]
fn a_rectangle_bounds_the_patches() {
    let scene = synth_scene(96, 96, 3);
    let rect = Window::new(30, 40, 50, 45);
    let src = [Source {
        scene: &scene,
        area: Area::Rect(rect),
        weight: 1.0,
    }];
    let patches = sample_from(&src, 5, 24, 1).unwrap();
    assert_eq!(patches.len(), 5);
    for p in &patches {
        let (r, c) = locate(&scene, p);
        assert!(
            r >= 30 && r + 24 <= 80 && c >= 40 && c + 24 <= 85,
            "{r},{c}"
        );
    }
    // A rectangle smaller than a patch: the patch covers it.
    let small = [Source {
        scene: &scene,
        area: Area::Rect(Window::new(50, 60, 4, 4)),
        weight: 1.0,
    }];
    for p in sample_from(&small, 2, 24, 1).unwrap() {
        let (r, c) = locate(&scene, &p);
        assert!(
            r <= 50 && r + 24 >= 54 && c <= 60 && c + 24 >= 64,
            "{r},{c}"
        );
    }
    // Outside the scene: nothing to draw, and the message says why.
    let outside = [Source {
        scene: &scene,
        area: Area::Rect(Window::new(200, 0, 10, 10)),
        weight: 1.0,
    }];
    let e = sample_from(&outside, 2, 24, 1).unwrap_err();
    assert!(
        matches!(&e, ModelError::Data(m) if m.contains("24 x 24")),
        "{e}"
    );
}

#[test]
fn a_condition_mask_holds_every_patch_centre() {
    let scene = synth_scene(100, 100, 4);
    // The left third of the scene.
    let mask: Vec<bool> = (0..scene.pixels()).map(|i| i % 100 < 33).collect();
    let src = [Source {
        scene: &scene,
        area: Area::Pixels(Arc::new(mask.clone())),
        weight: 1.0,
    }];
    let patches = sample_from(&src, 6, 20, 3).unwrap();
    assert_eq!(patches.len(), 6);
    for p in &patches {
        let (r, c) = locate(&scene, p);
        assert!(
            mask[(r + 10) * 100 + c + 10],
            "centre of {r},{c} outside the mask"
        );
    }
    // A condition of another scene selects nothing here.
    let other = Condition::new(Dimension::Service, "no such service");
    let none = [Source {
        scene: &scene,
        area: Area::Pixels(Arc::new(condition_mask(&scene, &other))),
        weight: 1.0,
    }];
    assert!(sample_from(&none, 2, 20, 3).is_err());
}

#[test]
fn balancing_evens_out_groups_of_scenes() {
    let mut a = synth_scene(64, 64, 5);
    let mut b = synth_scene(64, 64, 6);
    let mut c = synth_scene(64, 64, 7);
    a.meta.ice_service = Some("dmi".into());
    b.meta.ice_service = Some("dmi".into());
    c.meta.ice_service = Some("cis".into());
    let scenes = [&a, &b, &c];
    let w = balance_weights(&scenes, Dimension::Service).unwrap();
    assert_eq!(w, vec![0.5, 0.5, 1.0]);
    assert!(balance_weights(&scenes, Dimension::Land).is_err());
    // With weights, the lone "cis" scene gives about half of the patches.
    let sources: Vec<Source> = scenes
        .iter()
        .zip(&w)
        .map(|(s, w)| Source {
            scene: s,
            area: Area::Whole,
            weight: *w,
        })
        .collect();
    let patches = sample_from(&sources, 200, 64, 9).unwrap();
    let from_c = patches
        .iter()
        .filter(|p| p.y == c.charts.clone().unwrap())
        .count();
    assert!(
        (70..=130).contains(&from_c),
        "{from_c} of 200 from the cis scene"
    );
    // Unweighted, about a third.
    let plain: Vec<Source> = scenes.iter().map(|s| Source::whole(s)).collect();
    let patches = sample_from(&plain, 200, 64, 9).unwrap();
    let from_c = patches
        .iter()
        .filter(|p| p.y == c.charts.clone().unwrap())
        .count();
    assert!(
        (40..=95).contains(&from_c),
        "{from_c} of 200 from the cis scene"
    );
}

#[test]
fn validation_comes_from_other_sources() {
    let a = synth_scene(90, 90, 8);
    let b = synth_scene(90, 90, 9);
    let config = TrainConfig {
        patch_size: 32,
        val_fraction: 0.5,
        seed: 4,
        ..TrainConfig::default()
    };
    let sources = [Source::whole(&a), Source::whole(&b)];
    let (train, val) = prepare_from(&sources, 6, &config).unwrap();
    assert_eq!((train.len(), val.len()), (3, 3));
    let from = |p: &icelens_model::Patch| {
        if locate_in(&a, p) {
            0
        } else {
            1
        }
    };
    let t: Vec<_> = train.iter().map(from).collect();
    let v: Vec<_> = val.iter().map(from).collect();
    assert!(t.iter().all(|x| *x == t[0]) && v.iter().all(|x| *x == v[0]) && t[0] != v[0]);
}

fn locate_in(scene: &Scene, p: &icelens_model::Patch) -> bool {
    let size = p.height;
    (0..=scene.lines - size).any(|row| {
        (0..=scene.samples - size).any(|col| {
            scene
                .input_window(Window::new(row, col, size, size))
                .unwrap()
                == p.x
        })
    })
}

#[test]
fn share_weights_make_patches_follow_the_given_shares() {
    // Five scenes: three of region A, one of B, one of C; shares A 0.2, B 0.5, C 0.3.
    let regions = ["A", "A", "A", "B", "C"];
    let scenes: Vec<Scene> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut s = synth_scene(50, 50, 20 + i as u64);
            assert_eq!((s.lines, s.samples), (50, 50));
            s.meta.region = Some(r.to_string());
            s
        })
        .collect();
    let refs: Vec<&Scene> = scenes.iter().collect();
    let shares: std::collections::BTreeMap<String, f64> =
        [("A", 0.2), ("B", 0.5), ("C", 0.3), ("D", 0.9)]
            .iter()
            .map(|(g, s)| (g.to_string(), *s))
            .collect();
    let w = share_weights(&refs, Dimension::Region, &shares).unwrap();
    let want = [0.2 / 3.0, 0.2 / 3.0, 0.2 / 3.0, 0.5, 0.3];
    for (a, b) in w.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{w:?}");
    }
    let sources: Vec<Source> = refs
        .iter()
        .zip(&w)
        .map(|(s, w)| Source {
            scene: s,
            area: Area::Whole,
            weight: *w,
        })
        .collect();
    let n = 400;
    let patches = sample_from(&sources, n, 50, 11).unwrap();
    assert_eq!(patches.len(), n);
    // A 50-px patch of a 50-px scene is the whole scene: its input tells where it came from.
    let inputs: Vec<Vec<f32>> = scenes
        .iter()
        .map(|s| s.input_window(Window::new(0, 0, 50, 50)).unwrap())
        .collect();
    let mut per_region = std::collections::BTreeMap::<&str, usize>::new();
    for p in &patches {
        let i = inputs
            .iter()
            .position(|x| p.x == *x)
            .expect("patch from one of the scenes");
        *per_region.entry(regions[i]).or_default() += 1;
    }
    // Binomial standard deviations at n = 400 are at most 10 patches; allow 4 of them.
    for (g, share) in [("A", 0.2), ("B", 0.5), ("C", 0.3)] {
        let got = per_region[g] as f64;
        assert!(
            (got - share * n as f64).abs() < 40.0,
            "{g}: {got} of {n}, want about {}",
            share * n as f64
        );
    }
    // Unweighted the same scenes give A about 60 % (240): the weights are what moved it.
    let plain: Vec<Source> = refs.iter().map(|s| Source::whole(s)).collect();
    let a = sample_from(&plain, n, 50, 11)
        .unwrap()
        .iter()
        .filter(|p| inputs[..3].contains(&p.x))
        .count();
    assert!(a > 200, "{a} of {n} from region A unweighted");
    // A group without a share is never drawn; no share at all is an error naming the groups.
    let only_b: std::collections::BTreeMap<String, f64> = [("B".to_string(), 1.0)].into();
    let w = share_weights(&refs, Dimension::Region, &only_b).unwrap();
    assert_eq!(w, vec![0.0, 0.0, 0.0, 1.0, 0.0]);
    let none: std::collections::BTreeMap<String, f64> = [("Z".to_string(), 1.0)].into();
    let e = share_weights(&refs, Dimension::Region, &none).unwrap_err();
    assert!(
        matches!(&e, ModelError::Data(m) if m.contains("region") && m.contains("A, B, C")),
        "{e}"
    );
    assert!(share_weights(&refs, Dimension::Land, &shares).is_err());
}
