//! The "errors by condition" breakdown: against scikit-learn's per-scene reference scores,
//! against an independent NumPy/scikit-learn computation (scripts/check_breakdown.py), and
//! on small hand-computed cases.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use icelens_core::breakdown::*;
use icelens_core::meta::Timestamp;
use icelens_core::metrics::Scores;
use icelens_core::scene::TiePoints;
use icelens_core::synth::{generate, SynthSpec};
use icelens_core::{npy, read_scene, Chart, Container, ReadLimits, Scene, SceneMeta};

fn preds(p: &[Vec<u8>]) -> [&[u8]; 3] {
    [&p[0], &p[1], &p[2]]
}

/// A generated scene, read back through the reader.
fn synth_scene(lines: usize, samples: usize, seed: u64, service: &str, stamp: &str) -> Scene {
    let mut spec = SynthSpec::new(lines, samples, seed);
    spec.service = service.into();
    spec.stamp = stamp.into();
    let bytes = generate(&spec).to_netcdf().unwrap();
    read_scene(&spec.file_name(), bytes, &ReadLimits::default()).unwrap()
}

/// A deterministic "prediction": the reference with a share of pixels moved to other classes
/// (the extra "mask" output included), in blocks so that bands differ; any class where the
/// reference is 255.
fn perturbed(scene: &Scene, seed: u64) -> Vec<Vec<u8>> {
    Chart::ALL
        .iter()
        .map(|chart| {
            let truth = scene.chart(*chart).unwrap();
            let n_out = chart.n_outputs() as u64;
            truth
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let (line, sample) = (i / scene.samples, i % scene.samples);
                    let block = ((line / 16) * 977 + sample / 16) as u64;
                    let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
                    let rate = 2 + (block.wrapping_mul(seed | 1) >> 3) % 24; // out of 64
                    if *t == 255 {
                        (h % n_out) as u8
                    } else if h < rate {
                        ((*t as u64 + 1 + h % (n_out - 1)) % n_out) as u8
                    } else {
                        *t
                    }
                })
                .collect()
        })
        .collect()
}

/// A scene built directly from arrays: HH 1 (valid) everywhere unless given.
fn toy(
    name: &str,
    lines: usize,
    samples: usize,
    charts: [Vec<u8>; 3],
    meta: SceneMeta,
    sar: Option<[Vec<f32>; 4]>,
) -> Scene {
    let n = lines * samples;
    let sar = sar.unwrap_or_else(|| [vec![1.0; n], vec![-1.0; n], vec![0.0; n], vec![zone(30); n]]);
    Scene {
        file: format!("{name}_prep.nc"),
        container: Container::Netcdf3,
        lines,
        samples,
        grid_lines: 1,
        grid_samples: 1,
        sar,
        coarse: vec![vec![0.0]; 20],
        charts: Some(charts),
        tie_points: TiePoints {
            n_samples: 2,
            n_lines: 2,
            lat: vec![70.0; 4],
            lon: vec![-50.0; 4],
        },
        meta: SceneMeta {
            scene: name.into(),
            ..meta
        },
        variables: Vec::new(),
    }
}

/// Stored distance-map value of a zone id.
fn zone(id: u8) -> f32 {
    ((id as f64 - DISTANCE_MEAN_STD.0) / DISTANCE_MEAN_STD.1) as f32
}

/// Stored incidence value of an angle.
fn angle(deg: f64) -> f32 {
    ((deg - INCIDENCE_MEAN_STD.0) / INCIDENCE_MEAN_STD.1) as f32
}

fn meta(service: &str, region: &str, mission: &str, year: u16, month: u8) -> SceneMeta {
    SceneMeta {
        ice_service: Some(service.into()),
        region: Some(region.into()),
        mission: Some(mission.into()),
        acquired: Some(Timestamp {
            year,
            month,
            day: 5,
            hour: 12,
            minute: 0,
            second: 0,
        }),
        ..SceneMeta::default()
    }
}

fn row<'a>(rows: &'a [Row], dimension: Dimension, group: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.dimension == dimension && r.group == group)
        .unwrap_or_else(|| panic!("no row {dimension} = {group}"))
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

// 1. Per scene, the breakdown equals scikit-learn's scores of the fixture scenes.

#[test]
fn scene_rows_equal_the_reference_scores() {
    let json: serde_json::Value =
        serde_json::from_slice(&reference_bytes("scene_reference.json")).unwrap();
    let mut acc = Accumulator::all("pizza_marinara");
    for name in FIXTURES {
        let (scene, pred) = fixture_with_reference_pred(name);
        let labelled = acc.add_scene(&scene, preds(&pred)).unwrap();
        assert_eq!(labelled, scene.has_charts(), "{name}");
    }
    // The test-style fixture has no charts and no row.
    assert_eq!(acc.scenes().len(), 2);
    let rows = acc.rows_of(Dimension::Scene);
    assert_eq!(rows.len(), 2);
    for name in &FIXTURES[..2] {
        let r = row(&rows, Dimension::Scene, &name[..19]);
        let want = &json["scenes"][name];
        for chart in Chart::ALL {
            let w = &want["scores_this_scene"][chart.name()];
            assert_eq!(r.scores.get(chart), w.as_f64().unwrap(), "{name} {chart}");
            let px = want["valid_pixels"][chart.name()].as_u64().unwrap();
            assert_eq!(r.pixels[chart as usize], px, "{name} {chart}");
        }
        let w = want["scores_this_scene"]["combined"].as_f64().unwrap();
        assert_eq!(r.scores.combined, w, "{name}");
        assert_eq!(r.scenes, 1);
        assert!(!r.small);
    }
    // Pooled over both: the challenge's number, and every scene-level dimension's groups
    // add up to all labelled pixels.
    let pooled = &json["scores_all_labelled_scenes_pooled"];
    let s = acc.scores();
    assert_eq!(s.SIC, pooled["SIC"].as_f64().unwrap());
    assert_eq!(s.combined, pooled["combined"].as_f64().unwrap());
    let total: Vec<u64> = acc.confusions().iter().map(|c| c.total()).collect();
    for d in Dimension::ALL {
        let rows = acc.rows_of(d);
        assert!(!rows.is_empty(), "{d}");
        if d == Dimension::Class {
            continue;
        }
        for (k, t) in total.iter().enumerate() {
            let sum: u64 = rows.iter().map(|r| r.pixels[k]).sum();
            assert_eq!(sum, *t, "{d} chart {k}");
        }
    }
    // Each class group of a chart holds exactly that chart's pixels of the class.
    for chart in Chart::ALL {
        let sum: u64 = acc
            .rows_of(Dimension::Class)
            .iter()
            .filter(|r| r.group.starts_with(&format!("{} ", chart.name())))
            .map(|r| r.pixels[chart as usize])
            .sum();
        assert_eq!(sum, total[chart as usize], "{chart}");
    }
    // Per-class support adds up too, and the JSON export works (NaN as null).
    let classes = acc.class_rows();
    let sod: u64 = classes
        .iter()
        .filter(|c| c.chart == Chart::SOD)
        .map(|c| c.support)
        .sum();
    assert_eq!(sod, total[1]);
    let text = serde_json::to_string(&acc.rows()).unwrap();
    assert!(text.contains("\"dimension\":\"scene\""));
    let tables = acc.confusion_tables();
    assert_eq!(tables.len(), 3);
    assert_eq!(
        tables[0].counts.iter().flatten().sum::<u64>(),
        total[0],
        "SIC table"
    );
}

// 2. An independent computation in NumPy and scikit-learn.

#[test]
fn breakdown_equals_an_independent_numpy_sklearn_computation() {
    let mut scenes: Vec<(Scene, Vec<Vec<u8>>)> = FIXTURES[..2]
        .iter()
        .map(|n| fixture_with_reference_pred(n))
        .collect();
    let s = synth_scene(300, 260, 11, "cis", "20200905T120000");
    let p = perturbed(&s, 5);
    scenes.push((s, p));
    let s = synth_scene(240, 200, 12, "dmi", "20181203T083000");
    let p = perturbed(&s, 9);
    scenes.push((s, p));
    // Edge cases: SIC labelled at a single pixel (R² undefined), no FLOE at all, unknown
    // metadata, labelled land (zone 0) and labelled pixels without SAR data.
    {
        let n = 20 * 20;
        let mut sic = vec![255u8; n];
        sic[7] = 4;
        let sod: Vec<u8> = (0..n).map(|i| if i % 9 == 0 { 255 } else { 3 }).collect();
        let floe = vec![255u8; n];
        let hh: Vec<f32> = (0..n).map(|i| if i % 7 == 0 { 0.0 } else { 1.0 }).collect();
        let inc: Vec<f32> = (0..n)
            .map(|i| angle(19.0 + (i % 20) as f64 * 1.5))
            .collect();
        let dist: Vec<f32> = (0..n).map(|i| zone((i / 20) as u8 * 2)).collect();
        let sc = toy(
            "edge_single_pixel",
            20,
            20,
            [sic, sod, floe],
            SceneMeta::default(),
            Some([hh, vec![-1.0; n], inc, dist]),
        );
        let pred = vec![
            vec![4u8; n],
            (0..n).map(|i| if i % 5 == 0 { 1 } else { 3 }).collect(),
            vec![0u8; n],
        ];
        scenes.push((sc, pred));
    }
    // Constant references: SIC predicted perfectly (R² = 1), SOD constant with errors
    // (weighted F1 below 1), FLOE constant with a wrong and a "mask output" prediction.
    {
        let (l, w) = (30, 40);
        let n = l * w;
        let sc = toy(
            "edge_constant",
            l,
            w,
            [vec![10; n], vec![4; n], vec![2; n]],
            meta("dmi", "NorthWest", "S1B", 2021, 2),
            None,
        );
        let pred = vec![
            vec![10u8; n],
            (0..n).map(|i| if i % 4 == 0 { 5 } else { 4 }).collect(),
            (0..n)
                .map(|i| match i % 10 {
                    0 => 7,
                    1 => 3,
                    _ => 2,
                })
                .collect(),
        ];
        scenes.push((sc, pred));
    }
    // Constant SIC reference with an error: R² = 0.
    {
        let n = 16 * 16;
        let sc = toy(
            "edge_constant_wrong",
            16,
            16,
            [vec![0; n], vec![0; n], vec![0; n]],
            meta("cis", "SGRDIEA", "S1A", 2019, 7),
            None,
        );
        let mut sic = vec![0u8; n];
        sic[3] = 2;
        scenes.push((sc, vec![sic, vec![0; n], vec![0; n]]));
    }

    let dir = std::env::temp_dir().join(format!("icelens-breakdown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut acc = Accumulator::all("check");
    let mut manifest = Vec::new();
    for (k, (scene, pred)) in scenes.iter().enumerate() {
        assert!(acc.add_scene(scene, preds(pred)).unwrap());
        let prefix = format!("s{k}");
        let (l, w) = (scene.lines, scene.samples);
        let charts = scene.charts.as_ref().unwrap();
        let write = |suffix: &str, bytes: Vec<u8>| {
            std::fs::write(dir.join(format!("{prefix}_{suffix}.npy")), bytes).unwrap()
        };
        write("truth", npy::write_u8(&[3, l, w], &charts.concat()));
        write("pred", npy::write_u8(&[3, l, w], &pred.concat()));
        write("hh", npy::write_f32(&[l, w], &scene.sar[0]));
        write("inc", npy::write_f32(&[l, w], &scene.sar[2]));
        write("dist", npy::write_f32(&[l, w], &scene.sar[3]));
        let m = &scene.meta;
        manifest.push(serde_json::json!({
            "prefix": prefix,
            "name": m.scene,
            "service": m.ice_service,
            "region": m.region,
            "mission": m.mission,
            "acquired": m.acquired.map(|t| t.iso()),
            "lines": l,
            "samples": w,
        }));
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&serde_json::json!({ "scenes": manifest })).unwrap(),
    )
    .unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_breakdown.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("python3 with numpy and scikit-learn (scripts/setup.sh test installs them)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    let py: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let rows = acc.rows();
    let want: BTreeMap<(String, String), &serde_json::Value> = py["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = (
                r["dimension"].as_str().unwrap().to_string(),
                r["group"].as_str().unwrap().to_string(),
            );
            (key, r)
        })
        .collect();
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.dimension.key().to_string(), r.group.clone()))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(
        got_sorted,
        want.keys().cloned().collect::<Vec<_>>(),
        "the same (dimension, group) rows"
    );
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let mut nan_rows = 0;
    for r in &rows {
        let w = want[&(r.dimension.key().to_string(), r.group.clone())];
        let expect = Scores {
            SIC: num(&w["SIC"]),
            SOD: num(&w["SOD"]),
            FLOE: num(&w["FLOE"]),
            combined: num(&w["combined"]),
        };
        for m in Metric::ALL {
            assert!(
                same(m.of(&r.scores), m.of(&expect)),
                "{} = {}: {} {} (icelens) vs {} (sklearn)",
                r.dimension,
                r.group,
                m.key(),
                m.of(&r.scores),
                m.of(&expect)
            );
        }
        let px: Vec<u64> = w["pixels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(r.pixels.to_vec(), px, "{} = {}", r.dimension, r.group);
        assert_eq!(
            r.scenes as u64,
            w["scenes"].as_u64().unwrap(),
            "{} = {}",
            r.dimension,
            r.group
        );
        nan_rows += usize::from(r.scores.combined.is_nan());
    }
    // The edge cases are really there: undefined scores, R² of constant references, land
    // and no-SAR bands, all four incidence bands, an unknown-metadata group.
    assert!(nan_rows > 0);
    let single = row(&rows, Dimension::Scene, "edge_single_pixel");
    assert_eq!(single.pixels[0], 1);
    assert!(single.scores.SIC.is_nan() && single.scores.FLOE.is_nan());
    assert!(!single.scores.SOD.is_nan());
    assert_eq!(
        row(&rows, Dimension::Scene, "edge_constant").scores.SIC,
        100.0
    );
    assert_eq!(
        row(&rows, Dimension::Scene, "edge_constant_wrong")
            .scores
            .SIC,
        0.0
    );
    for g in LAND_GROUPS[..5].iter().chain(&INCIDENCE_GROUPS) {
        assert!(got.iter().any(|(_, group)| group == g), "band {g} missing");
    }
    assert!(row(&rows, Dimension::Region, "unknown").pixels[1] > 0);
    // January fixture, December synthetic scene, February toy.
    assert_eq!(row(&rows, Dimension::Season, "DJF winter").scenes, 3);
    println!(
        "{} rows over {} scenes agree with scikit-learn",
        rows.len(),
        scenes.len()
    );
}

// 3. Small cases computed by hand.

/// 2 × 2: SIC [0, 10, 10, -] predicted [0, 10, 0, 5]; SOD [0, 0, 1, 1] predicted
/// [0, 1, 1, 1]; no FLOE; HH missing at the last pixel.
fn two_by_two() -> (Scene, Vec<Vec<u8>>) {
    let sar = [
        vec![1.0, 1.0, 1.0, 0.0],
        vec![-1.0; 4],
        vec![angle(25.0), angle(25.0), angle(40.0), angle(40.0)],
        vec![zone(2), zone(2), zone(30), zone(30)],
    ];
    let scene = toy(
        "toy",
        2,
        2,
        [vec![0, 10, 10, 255], vec![0, 0, 1, 1], vec![255; 4]],
        meta("dmi", "SouthEast", "S1A", 2019, 4),
        Some(sar),
    );
    let pred = vec![vec![0, 10, 0, 5], vec![0, 1, 1, 1], vec![0; 4]];
    (scene, pred)
}

#[test]
fn hand_computed_scores_and_classes() {
    let (scene, pred) = two_by_two();
    let mut acc = Accumulator::all("m");
    assert!(acc.add_scene(&scene, preds(&pred)).unwrap());
    let rows = acc.rows();
    let r = row(&rows, Dimension::Scene, "toy");
    // R² = 1 − 100 / 66.67 = −0.5; weighted F1 = (2·2/3 + 2·4/5) / 4 = 0.7333…
    assert_eq!(r.scores.SIC, -50.0);
    assert_eq!(r.scores.SOD, 73.333);
    assert!(r.scores.FLOE.is_nan() && r.scores.combined.is_nan());
    assert_eq!(r.pixels, [3, 4, 0]);
    assert!(r.small);
    // Land: zone 2 (0-2 km) holds pixels 0, 1; zone 30 (over 50 km) pixels 2, 3.
    assert_eq!(row(&rows, Dimension::Land, "0-2 km").pixels, [2, 2, 0]);
    assert_eq!(row(&rows, Dimension::Land, "over 50 km").pixels, [1, 2, 0]);
    // Incidence: pixel 3 has no SAR; its SIC is unlabelled, its SOD is 1 predicted 1.
    let nosar = row(&rows, Dimension::Incidence, "no SAR data");
    assert_eq!(nosar.pixels, [0, 1, 0]);
    assert_eq!(nosar.scores.SOD, 100.0);
    assert!(nosar.scores.SIC.is_nan());
    assert_eq!(
        row(&rows, Dimension::Incidence, "far (>=38°)").pixels,
        [1, 1, 0]
    );
    // Class SOD 0: pixels 0 and 1; SIC there is [0, 10] predicted [0, 10], SOD [0, 0]
    // predicted [0, 1] → weighted F1 over labels {0, 1} with support only for 0: 2/3.
    let sod0 = row(&rows, Dimension::Class, "SOD 0");
    assert_eq!(sod0.pixels, [2, 2, 0]);
    assert_eq!(sod0.scores.SIC, 100.0);
    assert_eq!(sod0.scores.SOD, 66.667);
    // Month, season, year, region, service, mission.
    assert_eq!(row(&rows, Dimension::Month, "04 Apr").pixels, [3, 4, 0]);
    assert_eq!(row(&rows, Dimension::Season, "MAM spring").scenes, 1);
    assert_eq!(acc.rows_of(Dimension::Class).len(), 4); // SIC 0, SIC 10, SOD 0, SOD 1
                                                        // Per class: SOD 0 precision 1, recall 1/2; SOD 1 precision 2/3, recall 1.
    let classes = acc.class_rows();
    let c = |chart: Chart, class: u8| {
        classes
            .iter()
            .find(|r| r.chart == chart && r.class == class)
            .unwrap()
    };
    assert_eq!(
        (c(Chart::SOD, 0).precision, c(Chart::SOD, 0).recall),
        (1.0, 0.5)
    );
    assert_eq!(c(Chart::SOD, 1).precision, 2.0 / 3.0);
    assert_eq!(c(Chart::SOD, 1).name, "New ice");
    assert_eq!(c(Chart::SIC, 10).name, "100 %");
    // Conditions of a pixel and masks.
    let at3 = conditions_at(&scene, 3);
    assert!(at3.contains(&Condition::new(Dimension::Incidence, "no SAR data")));
    assert!(at3.contains(&Condition::new(Dimension::Class, "SOD 1")));
    assert!(!at3.iter().any(|c| c.group.starts_with("SIC ")));
    let mask = |d: Dimension, g: &str| condition_mask(&scene, &Condition::new(d, g));
    assert_eq!(mask(Dimension::Class, "SOD 1"), [false, false, true, true]);
    assert_eq!(
        mask(Dimension::Incidence, "near (<30°)"),
        [true, true, false, false]
    );
    assert_eq!(
        mask(Dimension::Land, "over 50 km"),
        [false, false, true, true]
    );
    assert_eq!(mask(Dimension::Service, "dmi"), [true; 4]);
    assert_eq!(mask(Dimension::Service, "cis"), [false; 4]);
    assert_eq!(mask(Dimension::Class, "SOD nonsense"), [false; 4]);
    // The same scene twice would count its pixels twice: refused. A short prediction too.
    assert!(matches!(
        acc.add_scene(&scene, preds(&pred)).unwrap_err(),
        ScoreError::Twice(_)
    ));
    let short = vec![vec![0u8; 3], vec![0; 4], vec![0; 4]];
    let mut other = scene.clone();
    other.meta.scene = "toy2".into();
    let e = acc.add_scene(&other, preds(&short)).unwrap_err();
    assert!(
        matches!(
            e,
            ScoreError::Size {
                chart: Chart::SIC,
                got: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("SIC prediction has 3 pixels"), "{e}");
}

#[test]
fn the_small_flag_follows_pixels_and_scenes() {
    let (l, w) = (100, 120); // 12 000 labelled pixels: enough for one scene
    let n = l * w;
    let charts = || [vec![5u8; n], vec![2u8; n], vec![3u8; n]];
    let pred = vec![vec![5u8; n], vec![2u8; n], vec![3u8; n]];
    let a = toy(
        "a",
        l,
        w,
        charts(),
        meta("cis", "SGRDIEA", "S1A", 2020, 1),
        None,
    );
    let mut acc = Accumulator::new("m", &[Dimension::Scene, Dimension::Service]);
    acc.add_scene(&a, preds(&pred)).unwrap();
    let rows = acc.rows();
    assert_eq!(rows.len(), 2, "only the dimensions asked for");
    assert!(!row(&rows, Dimension::Scene, "a").small);
    assert!(
        row(&rows, Dimension::Service, "cis").small,
        "one scene only"
    );
    let b = toy(
        "b",
        l,
        w,
        charts(),
        meta("cis", "SGRDIEA", "S1A", 2020, 1),
        None,
    );
    acc.add_scene(&b, preds(&pred)).unwrap();
    let rows = acc.rows();
    let cis = row(&rows, Dimension::Service, "cis");
    assert!(!cis.small);
    assert_eq!((cis.scenes, cis.pixels), (2, [2 * n as u64; 3]));
    // Below SMALL_PIXELS in every chart: small even as a scene.
    let c = toy(
        "c",
        10,
        10,
        [vec![5; 100], vec![2; 100], vec![3; 100]],
        meta("dmi", "x", "S1A", 2020, 1),
        None,
    );
    let pc = vec![vec![5u8; 100], vec![2; 100], vec![3; 100]];
    acc.add_scene(&c, preds(&pc)).unwrap();
    assert!(row(&acc.rows(), Dimension::Scene, "c").small);
    assert_eq!(SMALL_PIXELS, 10_000);
}

fn scored(group: &str, sic: f64, sod: f64, combined: f64) -> Row {
    Row {
        dimension: Dimension::Region,
        group: group.into(),
        scores: Scores {
            SIC: sic,
            SOD: sod,
            FLOE: 50.0,
            combined,
        },
        pixels: [1; 3],
        scenes: 1,
        small: true,
    }
}

#[test]
fn ranking_puts_the_worst_first_and_missing_scores_last() {
    let rows = vec![
        scored("a", 80.0, 10.0, 60.0),
        scored("b", f64::NAN, 30.0, f64::NAN),
        scored("c", -20.0, 20.0, 40.0),
        scored("d", 50.0, 20.0, 55.0),
    ];
    let order = |by: Metric| -> Vec<String> {
        rank(rows.clone(), by)
            .into_iter()
            .map(|r| r.group)
            .collect()
    };
    assert_eq!(order(Metric::SIC), ["c", "d", "a", "b"]);
    assert_eq!(
        order(Metric::SOD),
        ["a", "c", "d", "b"],
        "ties keep their order"
    );
    assert_eq!(order(Metric::Combined), ["c", "d", "a", "b"]);
    assert_eq!("combined".parse::<Metric>(), Ok(Metric::Combined));
    assert!("r2".parse::<Metric>().unwrap_err().contains("r2"));
}

#[test]
fn tile_errors_on_a_4x4_toy() {
    // Cells of 2 × 2: top left all right; top right SIC 10 predicted 5 (error 0.5, weight 2
    // of 5 → 0.2); bottom left unlabelled; bottom right no SIC, SOD half wrong, FLOE all
    // wrong → (2·0.5 + 1·1) / 3.
    #[rustfmt::skip]
    let sic = vec![
        3, 3, 10, 10,
        3, 3, 10, 10,
        255, 255, 255, 255,
        255, 255, 255, 255,
    ];
    #[rustfmt::skip]
    let sod = vec![
        1, 1, 4, 4,
        1, 1, 4, 4,
        255, 255, 1, 1,
        255, 255, 1, 1,
    ];
    #[rustfmt::skip]
    let floe = vec![
        2, 2, 5, 5,
        2, 2, 5, 5,
        255, 255, 3, 3,
        255, 255, 3, 3,
    ];
    let mut psic = sic.clone();
    let mut psod = sod.clone();
    let mut pfloe = floe.clone();
    for i in [2, 3, 6, 7] {
        psic[i] = 5;
    }
    psod[10] = 2;
    psod[14] = 2;
    for i in [10, 11, 14, 15] {
        pfloe[i] = 1;
    }
    let scene = toy("t", 4, 4, [sic, sod, floe], SceneMeta::default(), None);
    let g = tile_errors(&scene, [&psic, &psod, &pfloe], 2).unwrap();
    assert_eq!((g.rows, g.cols, g.cell), (2, 2, 2));
    assert_eq!(g.error_at(0, 0), 0.0);
    assert_eq!(g.error_at(0, 1), 0.2);
    assert!(g.error_at(1, 0).is_nan());
    assert_eq!(g.error_at(1, 1), (2.0f64 / 3.0) as f32);
    assert_eq!(g.pixels, [4, 4, 0, 4]);
    assert_eq!(worst_tile(&g, None), Some((1, 1)));
    let mut top_right = vec![false; 16];
    top_right[7] = true;
    assert_eq!(worst_tile(&g, Some(&top_right)), Some((0, 1)));
    let mut bottom_left = vec![false; 16];
    bottom_left[12] = true;
    assert_eq!(worst_tile(&g, Some(&bottom_left)), None);
    assert_eq!(worst_tile(&g, Some(&[true; 3])), None, "wrong mask size");
    assert_eq!(g.bounds(1, 1), (2..4, 2..4));
    // Ragged edges: 4 × 4 in cells of 3 gives 2 × 2 cells, the last ones smaller.
    let g = tile_errors(&scene, [&psic, &psod, &pfloe], 3).unwrap();
    assert_eq!((g.rows, g.cols), (2, 2));
    assert_eq!(g.pixels.iter().sum::<u32>(), 12);
    assert_eq!(g.bounds(1, 1), (3..4, 3..4));
}

#[test]
fn parse_list_names_the_unknown_word() {
    assert_eq!(
        Dimension::parse_list("service, Region,service"),
        Ok(vec![Dimension::Service, Dimension::Region])
    );
    assert_eq!(
        Dimension::parse_list("all").unwrap(),
        Dimension::ALL.to_vec()
    );
    let e = Dimension::parse_list("service,colour").unwrap_err();
    assert!(e.contains("\"colour\""), "{e}");
    assert!(e.contains("incidence") && e.contains("class"), "{e}");
    assert!(Dimension::parse_list(" , ").is_err());
    for d in Dimension::ALL {
        assert_eq!(d.key().parse::<Dimension>(), Ok(d));
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{}\"", d.key())
        );
    }
}

#[test]
fn csv_and_comparison_of_two_models() {
    let (scene, pred) = two_by_two();
    let mut a = Accumulator::all("first");
    a.add_scene(&scene, preds(&pred)).unwrap();
    let perfect: Vec<Vec<u8>> = scene
        .charts
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.iter().map(|v| if *v == 255 { 0 } else { *v }).collect())
        .collect();
    let mut b = Accumulator::new("perfect, really", &[Dimension::Scene, Dimension::Land]);
    b.add_scene(&scene, preds(&perfect)).unwrap();

    let rows = a.rows();
    let csv = to_csv("first", &rows);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "dimension,group,model,SIC,SOD,FLOE,combined,pixels_SIC,pixels_SOD,pixels_FLOE,scenes,small"
    );
    assert_eq!(lines.len(), rows.len() + 1);
    assert!(
        lines.contains(&"scene,toy,first,-50,73.333,,,3,4,0,1,true"),
        "{csv}"
    );

    let cmp = Comparison::new(&[&a, &b]);
    assert_eq!(cmp.models, ["first", "perfect, really"]);
    assert_eq!(cmp.rows.len(), rows.len(), "b's groups are a subset of a's");
    let toy_row = cmp
        .rows
        .iter()
        .find(|r| r.dimension == Dimension::Scene)
        .unwrap();
    let cell_b = toy_row.models[1].as_ref().unwrap();
    assert_eq!(cell_b.scores.SIC, 100.0);
    assert_eq!(cell_b.diff.unwrap().SIC, 150.0);
    assert_eq!(cell_b.diff.unwrap().SOD, 26.667);
    assert!(toy_row.models[0].as_ref().unwrap().diff.is_none());
    let season = cmp
        .rows
        .iter()
        .find(|r| r.dimension == Dimension::Season)
        .unwrap();
    assert!(season.models[1].is_none());
    let present: usize = cmp
        .rows
        .iter()
        .map(|r| r.models.iter().flatten().count())
        .sum();
    let csv = cmp.to_csv();
    assert_eq!(csv.lines().count(), present + 1);
    assert!(csv.contains(",\"perfect, really\","), "model name quoted");
    // Ranked by change of model b: the biggest gain of SIC last, rows without b last.
    let ranked = cmp.rank_by_change(Metric::SOD, 1);
    assert!(ranked.last().unwrap().models[1].is_none());
    let json = serde_json::to_value(&cmp).unwrap();
    assert!(json["rows"][0]["models"][0]["diff"].is_null());
}

#[test]
fn dataset_histograms_count_scenes() {
    let metas = vec![
        meta("cis", "SGRDIEA", "S1A", 2020, 9),
        meta("dmi", "NorthWest", "S1B", 2019, 3),
        meta("cis", "SGRDIEA", "S1A", 2020, 10),
        SceneMeta::default(),
    ];
    let h = dataset_histograms(&metas);
    let dims: Vec<Dimension> = h.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        dims,
        [
            Dimension::Service,
            Dimension::Region,
            Dimension::Month,
            Dimension::Year,
            Dimension::Mission
        ]
    );
    let get = |d: Dimension| h.iter().find(|(x, _)| *x == d).unwrap().1.clone();
    let s = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
        v.iter().map(|(g, n)| (g.to_string(), *n)).collect()
    };
    assert_eq!(
        get(Dimension::Service),
        s(&[("cis", 2), ("dmi", 1), ("unknown", 1)])
    );
    assert_eq!(
        get(Dimension::Month),
        s(&[("03 Mar", 1), ("09 Sep", 1), ("10 Oct", 1), ("unknown", 1)])
    );
    assert_eq!(
        get(Dimension::Year),
        s(&[("2019", 1), ("2020", 2), ("unknown", 1)])
    );
}

/// Time of `add_scene` on a large generated scene (run with `--ignored --nocapture`; size
/// from ICELENS_BREAKDOWN_SIZE=`lines`x`samples`, default a real scene's 5000x5200).
#[test]
#[ignore]
fn add_scene_timing() {
    let size = std::env::var("ICELENS_BREAKDOWN_SIZE").unwrap_or_else(|_| "5000x5200".into());
    let (l, w) = size.split_once('x').unwrap();
    let (l, w): (usize, usize) = (l.parse().unwrap(), w.parse().unwrap());
    let t0 = std::time::Instant::now();
    let s = generate(&SynthSpec::new(l, w, 1));
    let scene = Scene {
        file: s.spec.file_name(),
        container: Container::Netcdf3,
        lines: l,
        samples: w,
        grid_lines: s.grid_lines,
        grid_samples: s.grid_samples,
        sar: s.sar.clone(),
        coarse: Vec::new(),
        charts: Some(s.charts.clone()),
        tie_points: TiePoints {
            n_samples: 21,
            n_lines: 21,
            lat: s.lat.clone(),
            lon: s.lon.clone(),
        },
        meta: SceneMeta::derive(&s.spec.file_name(), None, Some(&s.original_id()), None),
        variables: Vec::new(),
    };
    drop(s);
    let pred = perturbed(&scene, 3);
    println!("generated {l}x{w} in {:.1?}", t0.elapsed());
    for dims in [vec![Dimension::Scene], Dimension::ALL.to_vec()] {
        let mut acc = Accumulator::new("t", &dims);
        let t = std::time::Instant::now();
        acc.add_scene(&scene, preds(&pred)).unwrap();
        let dt = t.elapsed();
        println!(
            "add_scene {l}x{w} ({:.1} Mpx), {} dimension(s): {dt:.2?} ({:.1} ns/px), {} rows",
            (l * w) as f64 / 1e6,
            dims.len(),
            dt.as_nanos() as f64 / (l * w) as f64,
            acc.rows().len()
        );
    }
    let t = std::time::Instant::now();
    let g = tile_errors(&scene, preds(&pred), 256).unwrap();
    println!(
        "tile_errors cell 256: {:.2?} ({}x{})",
        t.elapsed(),
        g.rows,
        g.cols
    );
}

/// JSON text: rows compare through it, since a group without a score holds NaN, which is not
/// equal to itself but prints as null.
fn js<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_string(x).unwrap()
}

/// Scenes for pooling tests: the two labelled fixtures with the reference model's maps and
/// three generated scenes (two services, several months) with perturbed maps.
fn pooling_scenes() -> Vec<(String, Scene, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for name in &FIXTURES[..2] {
        let (scene, pred) = fixture_with_reference_pred(name);
        out.push((name.to_string(), scene, pred));
    }
    for (seed, service, stamp) in [
        (3, "cis", "20190305T101500"),
        (4, "dmi", "20200817T120000"),
        (5, "dmi", "20211201T053000"),
    ] {
        let scene = synth_scene(96, 80, seed, service, stamp);
        let pred = perturbed(&scene, seed);
        out.push((format!("{stamp}_{service}_prep.nc"), scene, pred));
    }
    out
}

/// A part made as `evaluate --partial` makes it: every dimension, one model.
fn part_of(
    scenes: &[&(String, Scene, Vec<Vec<u8>>)],
    model: &str,
    fp: &str,
    shard: Option<icelens_core::shard::Shard>,
) -> Partial {
    let mut acc = Accumulator::all(model);
    let mut part = Partial::new(shard, &Dimension::ALL);
    let mut mats = Vec::new();
    for (file, scene, pred) in scenes {
        acc.add_scene(scene, preds(pred)).unwrap();
        mats.push(icelens_core::metrics::confusions(
            scene.charts.as_ref().unwrap(),
            preds(pred),
        ));
        part.scenes.push(PartialScene {
            file: file.clone(),
            scene: scene.meta.scene.clone(),
        });
    }
    part.push_model(fp.to_string(), &acc, &mats);
    part
}

#[test]
fn shards_merged_through_json_equal_one_accumulator() {
    use icelens_core::shard::Shard;
    let all = pooling_scenes();
    let mut whole = Accumulator::all("m.pt");
    for (_, scene, pred) in &all {
        whole.add_scene(scene, preds(pred)).unwrap();
    }
    for n in [1, 2, 3, 5] {
        let mut parts = Vec::new();
        for k in 1..=n {
            let shard = Shard::new(k, n).unwrap();
            let mine: Vec<&(String, Scene, Vec<Vec<u8>>)> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| shard.holds(*i))
                .map(|(_, s)| s)
                .collect();
            let json = part_of(&mine, "m.pt", "fp1", Some(shard)).to_json();
            let file = format!("part{k}.json");
            parts.push((
                file.clone(),
                Partial::from_json(&file, json.as_bytes()).unwrap(),
            ));
        }
        // Merge order does not matter either.
        parts.reverse();
        let merged = merge_partials(&parts).unwrap();
        assert_eq!(merged.dimensions, Dimension::ALL.to_vec());
        let m = &merged.models[0];
        assert_eq!(m.name, "m.pt");
        assert_eq!(m.fingerprint, "fp1");
        // Every row, class row and the pooled score, exactly.
        assert_eq!(js(&m.accumulator.rows()), js(&whole.rows()), "N = {n}");
        assert_eq!(js(&m.accumulator.class_rows()), js(&whole.class_rows()));
        assert_eq!(m.accumulator.confusions(), whole.confusions());
        assert_eq!(&m.pooled(), whole.confusions());
        assert_eq!(m.accumulator.scores(), whole.scores());
        // Scenes in file-name order, each with its own matrices.
        let files: Vec<&str> = merged.scenes.iter().map(|s| s.file.as_str()).collect();
        let mut sorted: Vec<&str> = all.iter().map(|(f, _, _)| f.as_str()).collect();
        sorted.sort();
        assert_eq!(files, sorted);
        for (name, c) in &m.scenes {
            let (_, scene, pred) = all.iter().find(|(_, s, _)| &s.meta.scene == name).unwrap();
            assert_eq!(
                c,
                &icelens_core::metrics::confusions(scene.charts.as_ref().unwrap(), preds(pred))
            );
        }
        // The merged counts written as one part (`merge --out`) and read back merge alone
        // into the same result, and are told apart from other JSON.
        let again_json = merged.to_partial().to_json();
        assert!(looks_like_partial(again_json.as_bytes()));
        assert!(!looks_like_partial(br#"{"title": "x", "steps": []}"#));
        assert!(!looks_like_partial(br#"["icelens-partial"]"#));
        let again = Partial::from_json("merged.json", again_json.as_bytes()).unwrap();
        assert_eq!(again.shard, None);
        let again = merge_partials(&[("merged.json".into(), again)]).unwrap();
        assert_eq!(js(&again.models[0].accumulator.rows()), js(&whole.rows()));
        assert_eq!(again.models[0].accumulator.scores(), whole.scores());
        assert_eq!(again.models[0].fingerprint, "fp1");
        assert_eq!(again.models[0].scenes, m.scenes);
        // Restricting to --by dimensions gives what an accumulator of those alone gives.
        let dims = [Dimension::Region, Dimension::Land];
        let mut only = Accumulator::new("m.pt", &dims);
        for (_, scene, pred) in &all {
            only.add_scene(scene, preds(pred)).unwrap();
        }
        assert_eq!(
            js(&m.accumulator.restricted(&dims).rows()),
            js(&only.rows())
        );
    }
}

#[test]
fn merging_refuses_what_is_not_one_run() {
    use icelens_core::shard::Shard;
    let all = pooling_scenes();
    let (a, b): (Vec<_>, Vec<_>) = all.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let a: Vec<_> = a.into_iter().map(|(_, s)| s).collect();
    let b: Vec<_> = b.into_iter().map(|(_, s)| s).collect();
    let s = |k, n| Some(Shard::new(k, n).unwrap());
    let named = |parts: Vec<(&str, Partial)>| -> Vec<(String, Partial)> {
        parts.into_iter().map(|(f, p)| (f.to_string(), p)).collect()
    };
    let err = |parts: Vec<(&str, Partial)>| merge_partials(&named(parts)).unwrap_err().to_string();

    // Different model file name, or same name with other weights.
    let e = err(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", s(1, 2))),
        ("b.json", part_of(&b, "n.pt", "fp1", s(2, 2))),
    ]);
    assert!(
        e.contains("a.json")
            && e.contains("b.json")
            && e.contains("different models")
            && e.contains("n.pt"),
        "{e}"
    );
    let e = err(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", s(1, 2))),
        ("b.json", part_of(&b, "m.pt", "fp2", s(2, 2))),
    ]);
    assert!(e.contains("different models") && e.contains("fp2"), "{e}");
    // Overlapping scenes.
    let e = err(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", None)),
        ("a2.json", part_of(&a[..1], "m.pt", "fp1", None)),
    ]);
    assert!(
        e.contains("both hold scene") && e.contains("a2.json"),
        "{e}"
    );
    // A missing shard, a shard twice, shards of different splits.
    let e = err(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", s(1, 3))),
        ("b.json", part_of(&b, "m.pt", "fp1", s(3, 3))),
    ]);
    assert!(
        e.contains("shard 2/3 is missing") && e.contains("1/3, 3/3"),
        "{e}"
    );
    let e = err(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", s(1, 2))),
        ("b.json", part_of(&[], "m.pt", "fp1", s(1, 2))),
    ]);
    assert!(e.contains("both shard 1/2"), "{e}");
    let e = err(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", s(1, 2))),
        ("b.json", part_of(&b, "m.pt", "fp1", s(2, 3))),
    ]);
    assert!(e.contains("shard 1/2") && e.contains("2/3"), "{e}");
    assert_eq!(merge_partials(&[]).unwrap_err(), PartialError::Empty);
    // Complete, disjoint: fine.
    assert!(merge_partials(&named(vec![
        ("a.json", part_of(&a, "m.pt", "fp1", s(1, 2))),
        ("b.json", part_of(&b, "m.pt", "fp1", s(2, 2))),
    ]))
    .is_ok());
}

#[test]
fn reading_a_part_names_the_file_and_the_problem() {
    let good = part_of(&[], "m.pt", "fp", None).to_json();
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not JSON"),
        ("{\"pooled\": {}}".into(), "no \"format\""),
        ("{\"format\": \"other\"}".into(), "format is \"other\""),
        (good.replace("\"version\":1", "\"version\":7"), "version 7"),
        (
            good.replace("\"version\":1", "\"version\":\"x\""),
            "no \"version\"",
        ),
        (good.replace("\"scenes\":[]", "\"scenes\":3"), "p.json: "),
    ];
    for (text, want) in cases {
        let e = Partial::from_json("p.json", text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.json: ") && e.contains(want), "{want}: {e}");
    }
    // A cell outside the matrix is reported by merge with the file and group.
    let all = pooling_scenes();
    let mut p = part_of(&[&all[2]], "m.pt", "fp", None);
    p.models[0].groups[0].confusions[0].push([99, 0, 1]);
    let e = merge_partials(&[("q.json".into(), p)])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("q.json: group ") && e.contains("[99, 0]"),
        "{e}"
    );
    // Parts that counted fewer dimensions than asked for.
    let mut p = part_of(&[&all[2]], "m.pt", "fp", None);
    p.dimensions = vec![Dimension::Region];
    p.models[0]
        .groups
        .retain(|g| g.dimension == Dimension::Region);
    let m = merge_partials(&[("r.json".into(), p)]).unwrap();
    assert!(m.require(&[Dimension::Region], "r.json").is_ok());
    let e = m
        .require(&[Dimension::Land, Dimension::Region], "r.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("r.json") && e.contains("not land"), "{e}");
}

#[test]
fn fingerprints_tell_files_apart() {
    let a = fingerprint(b"weights");
    assert_eq!(a, fingerprint(b"weights"));
    assert_ne!(a, fingerprint(b"weightt"));
    assert_ne!(a, fingerprint(b"weights\0"));
    // FNV-1a's published test vector for "a".
    assert!(fingerprint(b"a").starts_with("fnv1a64:af63dc4c8601ec8c:1"));
}
