//! The wgpu backend against PyTorch's outputs (natively: Vulkan; in CI, Mesa's lavapipe).

use std::path::PathBuf;

use icelens_core::checkpoint::load_state_dict;
use icelens_core::{npy, Chart};
use icelens_model::cpu::Feature;
use icelens_model::gpu::GpuUNet;
use icelens_model::UNet;

fn reference(name: &str) -> Vec<u8> {
    let shared = std::env::var("ICELENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    std::fs::read(shared.join("reference").join(name)).expect("reference file")
}

#[test]
fn wgpu_logits_match_pytorch() {
    let sd = load_state_dict("pizza_marinara.pt", &reference("pizza_marinara.pt")).unwrap();
    let net = UNet::from_state_dict(&sd).unwrap();
    let device = burn::tensor::Device::wgpu_options()
        .init()
        .expect("a wgpu adapter (install mesa-vulkan-drivers for a software one)");
    let gpu = GpuUNet::new(&net, &device);
    for prefix in ["", "odd_"] {
        let input = npy::read(&reference(&format!("{prefix}input.npy"))).unwrap();
        let s = input.shape.clone();
        let x = Feature {
            c: s[1],
            h: s[2],
            w: s[3],
            data: input.to_f32().unwrap(),
        };
        let out = gpu.forward(&x).unwrap();
        for chart in Chart::ALL {
            let want = npy::read(&reference(&format!("{prefix}out_{}.npy", chart.name())))
                .unwrap()
                .to_f32()
                .unwrap();
            let got = out.get(chart);
            assert_eq!(got.data.len(), want.len());
            let max = got
                .data
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max <= 1e-3, "{prefix}{chart}: max abs diff {max}");
        }
    }
}
