//! The command line with the team's attention U-Net (shared/reference/attention).

mod common;

use common::{icelens, max_abs_diff, shared};

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
fn convert_keeps_every_tensor() {
    let out = common::tmp("attention-cli", "attention.safetensors");
    let (ok, _, stderr) = icelens(&[
        "convert",
        "--model",
        &path(MODEL),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let a = load(&path(MODEL));
    let b = load(out.to_str().unwrap());
    assert_eq!(a.tensors, b.tensors);
    assert_eq!(a.keys_in_order(), b.keys_in_order());
}

fn load(p: &str) -> icelens_core::checkpoint::StateDict {
    icelens_core::checkpoint::load_state_dict(p, &std::fs::read(p).unwrap()).unwrap()
}

/// Two short epochs on one fixture, few small patches: what matters is which network comes out.
fn finetune(extra: &[&str], out: &std::path::Path) -> String {
    let mut args = vec!["finetune"];
    args.extend_from_slice(extra);
    let fixture = path(FIXTURES[0]);
    args.extend_from_slice(&[
        &fixture,
        "--out",
        out.to_str().unwrap(),
        "--patches",
        "6",
        "--patch-size",
        "64",
        "--batch",
        "2",
        "--epochs",
        "2",
        "--steps",
        "1",
    ]);
    let (ok, _, stderr) = icelens(&args);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn finetune_trains_an_attention_model_and_exports_the_notebooks_keys() {
    let out = common::tmp("attention-cli", "ft.pt");
    finetune(&["--model", &path(MODEL)], &out);
    let before = load(&path(MODEL));
    let after = load(out.to_str().unwrap());
    // UNetAttention's keys, shapes and order, so that load_state_dict(strict=True) takes it.
    assert_eq!(after.keys_in_order(), before.keys_in_order());
    for (k, t) in &before.tensors {
        assert_eq!(after.tensors[k].shape, t.shape, "{k}");
    }
    // The gates trained along with the rest.
    let psi = "expand_blocks.3.attention.psi.0.weight";
    assert!(max_abs_diff(&after.tensors[psi].data, &before.tensors[psi].data) > 0.0);
    let nbt = "expand_blocks.0.attention.W_x.1.num_batches_tracked";
    assert!(after.integer_values[nbt] > before.integer_values[nbt]);
    // And the result runs as an attention U-Net.
    let (ok, stdout, stderr) = icelens(&[
        "evaluate",
        "--model",
        out.to_str().unwrap(),
        &path(FIXTURES[1]),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("combined"), "{stdout}");
}

#[test]
fn a_plain_unet_grows_into_an_attention_unet() {
    let out = common::tmp("attention-cli", "grown.pt");
    let stderr = finetune(
        &[
            "--model",
            &path("reference/pizza_marinara.pt"),
            "--filters",
            "16,32,32,32",
            "--attention",
        ],
        &out,
    );
    let plain = load(&path("reference/pizza_marinara.pt"));
    let grown = load(out.to_str().unwrap());
    // The reference attention checkpoint has the same filters: the same keys, in its order.
    assert_eq!(grown.keys_in_order(), load(&path(MODEL)).keys_in_order());
    // As the fork's UNetTrans: two convolutions each of the input block, the three contracting
    // and the four expanding blocks, and the three heads (the bridge and the gates start fresh).
    assert!(stderr.contains("19 tensors from"), "{stderr}");
    assert!(grown.tensors.keys().any(|k| k.contains(".attention.")));
    assert!(!plain.tensors.keys().any(|k| k.contains(".attention.")));

    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--attention",
        &path(FIXTURES[0]),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("--filters"), "{stderr}");
}

#[test]
fn predict_writes_the_attention_maps_on_the_scene_grid() {
    let dir = common::tmp("attention-cli", "maps");
    let upload = common::tmp("attention-cli", "maps-upload.nc");
    let (ok, _, stderr) = icelens(&[
        "predict",
        "--model",
        &path(MODEL),
        &path(FIXTURES[1]),
        "--upload",
        upload.to_str().unwrap(),
        "--attention",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let bytes = std::fs::read(path(FIXTURES[1])).unwrap();
    let scene =
        icelens_core::read_scene(FIXTURES[1], bytes, &icelens_core::ReadLimits::default()).unwrap();
    let maps: Vec<Vec<u8>> = (0..4)
        .map(|k| {
            let p = dir.join(format!("{}_attention_{k}.npy", scene.meta.scene));
            let a = icelens_core::npy::read(&std::fs::read(&p).unwrap()).unwrap();
            assert_eq!(a.shape, vec![scene.lines, scene.samples], "{}", p.display());
            a.to_u8().unwrap()
        })
        .collect();
    // The fixture runs in one piece, so the finest block's map is the network's own ψ at
    // every pixel.
    let sd = load(&path(MODEL));
    let net = icelens_model::UNet::from_state_dict(&sd).unwrap();
    let win = icelens_core::input::Window::new(0, 0, scene.lines, scene.samples);
    let x = icelens_model::cpu::Feature {
        c: 24,
        h: scene.lines,
        w: scene.samples,
        data: scene.input_window(win).unwrap(),
    };
    let (_, psis) = net.forward_with_attention(&x);
    let want: Vec<u8> = psis[3]
        .data
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    assert_eq!(maps[3], want);
    // The coarser blocks differ from it and from each other: each map is its own block's.
    assert_ne!(maps[0], maps[3]);
    assert_ne!(maps[1], maps[2]);

    let (ok, _, stderr) = icelens(&[
        "predict",
        "--model",
        &path("reference/pizza_marinara.pt"),
        &path(FIXTURES[1]),
        "--upload",
        upload.to_str().unwrap(),
        "--attention",
        dir.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("pizza_marinara.pt") && stderr.contains("plain U-Net"),
        "{stderr}"
    );
}
