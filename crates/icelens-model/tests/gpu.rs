//! The wgpu backend against PyTorch's outputs (natively: Vulkan; in CI, Mesa's lavapipe):
//! logits within 1e-3 and PyTorch's class wherever its top two logits are not a near-tie.

mod common;

use common::{assert_argmax_matches, max_abs_diff, reference};
use icelens_core::checkpoint::load_state_dict;
use icelens_core::{npy, Chart};
use icelens_model::cpu::Feature;
use icelens_model::gpu::GpuUNet;

#[test]
fn wgpu_logits_match_pytorch() {
    let sd = load_state_dict("pizza_marinara.pt", &reference("pizza_marinara.pt")).unwrap();
    let gpu = GpuUNet::new(&sd, &common::device()).unwrap();
    for prefix in ["", "odd_"] {
        let input = npy::read(&reference(&format!("{prefix}input.npy"))).unwrap();
        let s = input.shape.clone();
        let x = Feature {
            c: s[1],
            h: s[2],
            w: s[3],
            data: input.to_f32().unwrap(),
        };
        let out = icelens_model::block_on(gpu.forward(&x)).unwrap();
        for chart in Chart::ALL {
            let want = npy::read(&reference(&format!("{prefix}out_{}.npy", chart.name())))
                .unwrap()
                .to_f32()
                .unwrap();
            let got = out.get(chart);
            assert_eq!((got.h, got.w), (s[2], s[3]), "{prefix}{chart}");
            let max = max_abs_diff(&got.data, &want);
            assert!(max <= 1e-3, "{prefix}{chart}: max abs diff {max}");
            // Where PyTorch is not near a tie, the wgpu network picks PyTorch's class.
            let argmax = npy::read(&reference(&format!("{prefix}argmax_{}.npy", chart.name())))
                .unwrap()
                .to_u8()
                .unwrap();
            assert_argmax_matches(
                &format!("wgpu {prefix}{chart}"),
                got.c,
                &got.data,
                &want,
                &argmax,
            );
        }
    }
}
