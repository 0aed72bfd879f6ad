//! The command line with the team's attention U-Net (shared/reference/attention).

mod common;

use common::{icelens, shared};

fn path(rel: &str) -> String {
    shared().join(rel).to_string_lossy().into_owned()
}

const MODEL: &str = "reference/attention/unet_attention_4lvl.pt";
const FIXTURES: [&str; 3] = [
    "fixtures/20190412T103015_dmi_prep.nc",
    "fixtures/20200117T211533_cis_prep.nc",
    "fixtures/20211130T083012_dmi_prep.nc",
];

fn read_f32(p: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let a = icelens_core::npy::read(&std::fs::read(p).unwrap()).unwrap();
    (a.shape.clone(), a.to_f32().unwrap())
}

/// Largest difference; NaN anywhere makes it infinite, so that it fails any tolerance.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() {
            f32::INFINITY
        } else {
            m.max(d)
        }
    })
}

#[test]
fn forward_writes_logits_and_attention_maps() {
    let out = common::tmp("attention-cli", "forward");
    let (ok, _, stderr) = icelens(&[
        "forward",
        "--model",
        &path(MODEL),
        "--input",
        &path("reference/attention/odd_input.npy"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for chart in ["SIC", "SOD", "FLOE"] {
        let (gs, got) = read_f32(&out.join(format!("out_{chart}.npy")));
        let (ws, want) =
            read_f32(&shared().join(format!("reference/attention/odd_out_{chart}.npy")));
        assert_eq!(gs, ws);
        let d = max_abs_diff(&got, &want);
        assert!(d <= 1e-3, "{chart}: {d}");
    }
    for k in 0..4 {
        let (gs, got) = read_f32(&out.join(format!("attention_{k}.npy")));
        let (ws, want) = read_f32(&shared().join(format!("reference/attention/odd_psi_{k}.npy")));
        assert_eq!(gs, ws, "attention_{k}");
        let d = max_abs_diff(&got, &want);
        assert!(d <= 1e-3, "attention_{k}: {d}");
    }
    assert!(!out.join("attention_4.npy").exists());

    // A plain U-Net writes no attention maps.
    let plain = common::tmp("attention-cli", "forward-plain");
    let (ok, _, stderr) = icelens(&[
        "forward",
        "--model",
        &path("reference/pizza_marinara.pt"),
        "--input",
        &path("reference/odd_input.npy"),
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(plain.join("out_SIC.npy").exists());
    assert!(!plain.join("attention_0.npy").exists());
}

#[test]
fn evaluate_gives_the_reference_scores() {
    let mut args = vec!["evaluate".to_string(), "--model".into(), path(MODEL)];
    args.extend(FIXTURES[..2].iter().map(|f| path(f)));
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = icelens(&args);
    assert!(ok, "{stderr}");
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared().join("reference/attention/scene_reference.json")).unwrap(),
    )
    .unwrap();
    for key in ["SIC", "SOD", "FLOE", "combined"] {
        assert_eq!(
            got["pooled"][key], want["scores_all_labelled_scenes_pooled"][key],
            "{key}"
        );
    }
}

#[test]
fn convert_keeps_every_tensor_and_finetune_refuses_by_name() {
    let out = common::tmp("attention-cli", "attention.safetensors");
    let (ok, _, stderr) = icelens(&[
        "convert",
        "--model",
        &path(MODEL),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let load =
        |p: &str| icelens_core::checkpoint::load_state_dict(p, &std::fs::read(p).unwrap()).unwrap();
    let a = load(&path(MODEL));
    let b = load(out.to_str().unwrap());
    assert_eq!(a.tensors, b.tensors);
    assert_eq!(a.keys_in_order(), b.keys_in_order());

    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--model",
        &path(MODEL),
        &path(FIXTURES[0]),
        "--out",
        common::tmp("attention-cli", "ft.pt").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("unet_attention_4lvl.pt") && stderr.contains("attention U-Net"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
