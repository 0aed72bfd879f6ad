//! The U-Net against PyTorch's own outputs for pizza_marinara (shared/reference).

mod common;

use common::{max_abs_diff, reference, shared};
use icelens_core::checkpoint::load_state_dict;
use icelens_core::{npy, read_scene, Chart, ReadLimits};
use icelens_model::cpu::Feature;
use icelens_model::infer::plan_tiles;
use icelens_model::{infer_scene, InferOptions, SicHead, UNet};

fn marinara() -> UNet {
    let sd = load_state_dict("pizza_marinara.pt", &reference("pizza_marinara.pt")).unwrap();
    assert_eq!(sd.epoch, Some(42));
    UNet::from_state_dict(&sd).unwrap()
}

fn npy_f32(name: &str) -> (Vec<usize>, Vec<f32>) {
    let a = npy::read(&reference(name)).unwrap();
    (a.shape.clone(), a.to_f32().unwrap())
}

#[test]
fn architecture_is_read_from_the_checkpoint() {
    let net = marinara();
    assert_eq!(net.arch.filters, vec![16, 32, 32, 32]);
    assert_eq!(net.arch.head_outputs, [12, 7, 8]);
    assert_eq!(net.arch.sic, SicHead::Classification);
    assert_eq!(net.arch.parameter_count(), 168_523);
}

fn check_case(prefix: &str) {
    let net = marinara();
    let (shape, input) = npy_f32(&format!("{prefix}input.npy"));
    let x = Feature {
        c: shape[1],
        h: shape[2],
        w: shape[3],
        data: input,
    };
    let out = net.forward(&x);
    for chart in Chart::ALL {
        let (rshape, want) = npy_f32(&format!("{prefix}out_{}.npy", chart.name()));
        let got = out.get(chart);
        assert_eq!(vec![1, got.c, got.h, got.w], rshape, "{prefix}{chart}");
        let max = max_abs_diff(&got.data, &want);
        assert!(max <= 1e-3, "{prefix}{chart}: max abs diff {max}");
        // Argmax where the reference is not a near-tie.
        let argmax = npy::read(&reference(&format!("{prefix}argmax_{}.npy", chart.name())))
            .unwrap()
            .to_u8()
            .unwrap();
        let plane = got.h * got.w;
        let mut compared = 0;
        for p in 0..plane {
            let mut logits: Vec<f32> = (0..got.c).map(|c| want[c * plane + p]).collect();
            let top = argmax[p] as usize;
            let t1 = logits[top];
            logits[top] = f32::NEG_INFINITY;
            let t2 = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            if t1 - t2 > 1e-3 {
                let mine = (0..got.c)
                    .max_by(|a, b| {
                        got.data[a * plane + p]
                            .total_cmp(&got.data[b * plane + p])
                            .then(b.cmp(a))
                    })
                    .unwrap();
                assert_eq!(mine, top, "{prefix}{chart} pixel {p}");
                compared += 1;
            }
        }
        assert!(
            compared > plane * 9 / 10,
            "{prefix}{chart}: compared {compared}"
        );
    }
}

#[test]
fn logits_match_pytorch_on_256_x_256() {
    check_case("");
}

#[test]
fn logits_match_pytorch_on_an_odd_size() {
    check_case("odd_");
}

#[test]
fn whole_scene_predictions_match_the_reference_maps() {
    let net = marinara();
    for name in [
        "20190412T103015_dmi_prep.nc",
        "20200117T211533_cis_prep.nc",
        "20211130T083012_dmi_prep.nc",
    ] {
        let bytes = std::fs::read(shared().join("fixtures").join(name)).unwrap();
        let scene = read_scene(name, bytes, &ReadLimits::default()).unwrap();
        let mut calls = 0;
        let pred = infer_scene(&net, &scene, &InferOptions::default(), &mut |d, t| {
            calls += 1;
            assert_eq!((d, t), (1, 1), "fixtures run whole");
            true
        })
        .unwrap();
        assert_eq!(calls, 1);
        let npz = reference(&format!("scene_{}.npz", &name[..19]));
        for chart in Chart::ALL {
            let want = npy::read_npz_member(&npz, &format!("pred_{}", chart.name()))
                .unwrap()
                .to_u8()
                .unwrap();
            let margin = npy::read_npz_member(&npz, &format!("margin_{}", chart.name()))
                .unwrap()
                .to_f32()
                .unwrap();
            let got = pred.chart(chart);
            let wrong = (0..want.len())
                .filter(|i| margin[*i] > 1e-3 && got[*i] != want[*i])
                .count();
            assert_eq!(wrong, 0, "{name} {chart}");
            assert!(pred.confidence[chart as usize]
                .iter()
                .all(|p| *p > 0.0 && *p <= 1.0));
        }
    }
}

#[test]
fn tiled_runs_agree_with_whole_runs_and_can_be_cancelled() {
    let net = marinara();
    let name = "20190412T103015_dmi_prep.nc";
    let bytes = std::fs::read(shared().join("fixtures").join(name)).unwrap();
    let scene = read_scene(name, bytes, &ReadLimits::default()).unwrap();
    let whole = infer_scene(&net, &scene, &InferOptions::default(), &mut |_, _| true).unwrap();
    let opts = InferOptions {
        tile: 384,
        halo: 128,
        whole_scene_max_pixels: 0,
    };
    assert_eq!(plan_tiles(600, 500, &opts).len(), 4);
    let mut seen = vec![];
    let tiled = infer_scene(&net, &scene, &opts, &mut |d, t| {
        seen.push((d, t));
        true
    })
    .unwrap();
    assert_eq!(seen, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    for chart in Chart::ALL {
        let same = whole
            .chart(chart)
            .iter()
            .zip(tiled.chart(chart))
            .filter(|(a, b)| a == b)
            .count();
        let agreement = same as f64 / whole.chart(chart).len() as f64;
        assert!(agreement >= 0.995, "{chart}: {agreement}");
    }
    let mut n = 0;
    let cancelled = infer_scene(&net, &scene, &opts, &mut |_, _| {
        n += 1;
        n < 2
    });
    assert_eq!(cancelled.unwrap_err(), "cancelled");
    assert_eq!(n, 2);
}
