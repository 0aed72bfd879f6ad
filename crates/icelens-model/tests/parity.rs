//! The U-Net against PyTorch's own outputs for pizza_marinara (shared/reference).

mod common;

use common::{assert_argmax_matches, max_abs_diff, reference, shared};
use icelens_core::checkpoint::load_state_dict;
use icelens_core::{npy, read_scene, Chart, ReadLimits};
use icelens_model::cpu::Feature;
use icelens_model::infer::{plan_tiles, tile_prediction};
use icelens_model::unet::Outputs;
use icelens_model::{
    infer_scene, predict_scene, Architecture, Forward, InferError, InferOptions, Prediction,
    SicHead, UNet,
};

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
        assert_eq!(argmax.len(), got.h * got.w);
        assert_argmax_matches(
            &format!("{prefix}{chart}"),
            got.c,
            &got.data,
            &want,
            &argmax,
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
    assert_eq!(cancelled.unwrap_err(), icelens_model::InferError::Cancelled);
    assert_eq!(n, 2);
}

/// The exact network behind a pool of `at_once` workers, as the page's CPU path has: each
/// tile waits once before it runs (as a worker's answer does), and the most tiles ever under
/// way together are counted.
struct Pool<'a> {
    net: &'a UNet,
    at_once: usize,
    under_way: std::cell::Cell<usize>,
    most: std::cell::Cell<usize>,
}

/// Pending once, then ready: lets the other tiles of the loop start.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

impl Forward for Pool<'_> {
    fn architecture(&self) -> Architecture {
        self.net.arch.clone()
    }

    async fn run(&self, x: &Feature) -> Result<(Outputs, Vec<Feature>), InferError> {
        self.net.run(x).await
    }

    fn tiles_at_once(&self) -> usize {
        self.at_once
    }

    async fn run_tile(
        &self,
        x: Feature,
        win: icelens_core::input::Window,
        core: icelens_core::input::Window,
    ) -> Result<Prediction, InferError> {
        self.under_way.set(self.under_way.get() + 1);
        self.most.set(self.most.get().max(self.under_way.get()));
        YieldOnce(false).await;
        let (out, psis) = self.net.forward_with_attention(&x);
        self.under_way.set(self.under_way.get() - 1);
        tile_prediction(&self.net.arch, &out, &psis, win, core)
    }
}

#[test]
fn tiles_under_way_together_stitch_to_the_same_prediction_in_plan_order() {
    let net = marinara();
    let name = "20190412T103015_dmi_prep.nc";
    let bytes = std::fs::read(shared().join("fixtures").join(name)).unwrap();
    let scene = read_scene(name, bytes, &ReadLimits::default()).unwrap();
    // 600 x 500 in 128 px tiles: 20 tiles, so a pool of 3 has work to share.
    let opts = InferOptions {
        tile: 128,
        halo: 64,
        whole_scene_max_pixels: 0,
    };
    let one_by_one = infer_scene(&net, &scene, &opts, &mut |_, _| true).unwrap();
    for at_once in [1, 3] {
        let pool = Pool {
            net: &net,
            at_once,
            under_way: 0.into(),
            most: 0.into(),
        };
        let mut seen = vec![];
        let pred = icelens_model::block_on(predict_scene(&pool, &scene, &opts, async |d, t| {
            seen.push((d, t));
            true
        }))
        .unwrap();
        assert_eq!(pool.most.get(), at_once);
        assert_eq!(seen, (1..=20).map(|d| (d, 20)).collect::<Vec<_>>());
        assert!(pred == one_by_one, "{at_once} tiles at once differ");
    }
}

/// The comparison helpers themselves: a NaN anywhere fails a tolerance check, and one wrong
/// argmax among confident pixels fails the argmax check.
#[test]
fn max_abs_diff_reports_nan_and_infinity() {
    let a = [0.0f32, 1.0, 2.0, 3.0];
    assert_eq!(max_abs_diff(&a, &[0.0, 1.5, 2.0, 2.0]), 1.0);
    for at in 0..a.len() {
        let mut b = a;
        b[at] = f32::NAN;
        assert!(max_abs_diff(&a, &b).is_nan(), "NaN at {at}");
        assert!(
            max_abs_diff(&b, &a).is_nan(),
            "NaN at {at} (first argument)"
        );
        b[at] = f32::INFINITY;
        assert_eq!(max_abs_diff(&a, &b), f32::INFINITY, "infinity at {at}");
    }
    // NaN against NaN is not "equal".
    assert!(max_abs_diff(&[f32::NAN], &[f32::NAN]).is_nan());
}

#[test]
fn argmax_check_catches_one_wrong_pixel_and_skips_near_ties() {
    // Three classes over 20 pixels, pixel i confidently class i % 3, but pixel 19 a near-tie
    // between classes 0 and 1.
    let (classes, plane) = (3, 20);
    let mut want = vec![0f32; classes * plane];
    let mut argmax = vec![0u8; plane];
    for p in 0..plane {
        argmax[p] = (p % 3) as u8;
        want[(p % 3) * plane + p] = 5.0;
    }
    want[19] = 1.0;
    want[plane + 19] = 1.0005;
    argmax[19] = 1;
    let mut got = want.clone();
    got[19] = 2.0; // the near-tie may go either way
    assert_eq!(
        assert_argmax_matches("ok", classes, &got, &want, &argmax),
        19
    );
    let mut wrong = got.clone();
    wrong[2 * plane + 4] = 9.0; // pixel 4 (class 1) now says class 2
    let caught =
        std::panic::catch_unwind(|| assert_argmax_matches("bad", classes, &wrong, &want, &argmax));
    assert!(caught.is_err(), "a wrong argmax passed");
    for bad in [f32::NAN, -f32::NAN] {
        let mut nan = got.clone();
        nan[plane] = bad; // pixel 0, class 1
        let caught = std::panic::catch_unwind(|| {
            assert_argmax_matches("nan", classes, &nan, &want, &argmax)
        });
        assert!(caught.is_err(), "a NaN logit passed the argmax check");
    }
}
