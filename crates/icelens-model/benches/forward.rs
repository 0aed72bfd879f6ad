//! Forward pass of a checkpoint on a 1 x 24 x N x N input: wall time and Mpixel/s.
//!
//! `cargo bench -p icelens-model --bench forward -- MODEL.pt [SIZE] [RUNS] [--gpu]`
//! (defaults: shared/reference/pizza_marinara.pt, 1024, 3). Prints one line per backend.

use std::time::Instant;

use icelens_core::checkpoint::load_state_dict;
use icelens_model::cpu::Feature;
use icelens_model::UNet;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let gpu = args.iter().any(|a| a == "--gpu");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let model = pos.first().map(|s| s.to_string()).unwrap_or_else(|| {
        format!(
            "{}/../../../shared/reference/pizza_marinara.pt",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let size: usize = pos.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let runs: usize = pos.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let bytes = std::fs::read(&model).expect("model file");
    let sd = load_state_dict(&model, &bytes).expect("checkpoint");
    let net = UNet::from_state_dict(&sd).expect("U-Net");
    // Smooth, input-like values (the result does not depend on them, the timing barely).
    let data: Vec<f32> = (0..24 * size * size)
        .map(|i| ((i % 977) as f32 * 0.013).sin())
        .collect();
    let x = Feature {
        c: 24,
        h: size,
        w: size,
        data,
    };
    let mpx = (size * size) as f64 / 1e6;
    let report = |name: &str, times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        let best = times[0];
        let median = times[times.len() / 2];
        println!(
            "{name:<12} {size}x{size}: best {best:.3} s, median {median:.3} s, {:.3} Mpixel/s",
            mpx / best
        );
    };
    let _ = net.forward(&x); // warm-up: thread pool, page faults
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = net.forward(&x);
        std::hint::black_box(&out);
        times.push(t.elapsed().as_secs_f64());
    }
    report("icelens-cpu", &mut times);
    if gpu {
        let device = burn::tensor::Device::wgpu_options()
            .init()
            .expect("a wgpu adapter");
        let g = icelens_model::gpu::GpuUNet::new(&sd, &device).expect("U-Net on wgpu");
        let _ = icelens_model::block_on(g.forward(&x)).expect("gpu forward"); // shader compilation
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let out = icelens_model::block_on(g.forward(&x)).expect("gpu forward");
            std::hint::black_box(&out);
            times.push(t.elapsed().as_secs_f64());
        }
        report("icelens-wgpu", &mut times);
    }
}
