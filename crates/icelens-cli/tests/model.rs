//! `forward`, `predict` and `evaluate` on the shared reference checkpoint and fixtures.

use std::path::PathBuf;
use std::process::Command;

mod common;

use common::{icelens, max_abs_diff, shared};

fn path(rel: &str) -> String {
    shared().join(rel).to_string_lossy().into_owned()
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("model-cli", name)
}

const MODEL: &str = "reference/pizza_marinara.pt";
const DMI: &str = "fixtures/20190412T103015_dmi_prep.nc";
const CIS: &str = "fixtures/20200117T211533_cis_prep.nc";
const TEST: &str = "fixtures/20211130T083012_dmi_prep.nc";

/// The logit comparisons below use `max_abs_diff`: a NaN anywhere must fail them.
#[test]
fn max_abs_diff_reports_a_nan_anywhere() {
    let a = [0.5f32, -1.0, 2.0];
    assert_eq!(max_abs_diff(&a, &[0.5, -1.25, 2.0]), 0.25);
    for at in 0..a.len() {
        let mut b = a;
        b[at] = f32::NAN;
        assert!(max_abs_diff(&a, &b).is_nan(), "NaN at {at}");
        assert!(max_abs_diff(&b, &a).is_nan(), "NaN at {at}, first argument");
        b[at] = f32::INFINITY;
        assert_eq!(max_abs_diff(&a, &b), f32::INFINITY, "infinity at {at}");
    }
}

#[test]
fn evaluate_json_equals_the_reference_scores_and_skips_bad_scenes() {
    let bad = tmp("bad_prep.nc");
    std::fs::write(&bad, b"CDF\x02 and then nothing useful").unwrap();
    let (ok, stdout, stderr) = icelens(&[
        "evaluate",
        "--model",
        &path(MODEL),
        &path(DMI),
        bad.to_str().unwrap(),
        &path(CIS),
        &path(TEST),
        "--json",
    ]);
    assert!(!ok, "bad scenes make the exit code non-zero");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].contains("bad_prep.nc"));
    assert!(
        errors[1].contains("20211130T083012_dmi_prep.nc") && errors[1].contains("no ice charts")
    );
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared().join("reference/scene_reference.json")).unwrap(),
    )
    .unwrap();
    for key in ["SIC", "SOD", "FLOE", "combined"] {
        assert_eq!(
            got["pooled"][key], want["scores_all_labelled_scenes_pooled"][key],
            "{key}"
        );
    }
    let scenes = got["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 2);
    for s in scenes {
        let name = format!("{}_prep.nc", s["scene"].as_str().unwrap());
        for key in ["SIC", "SOD", "FLOE", "combined"] {
            assert_eq!(
                s[key], want["scenes"][&name]["scores_this_scene"][key],
                "{name} {key}"
            );
        }
    }
}

#[test]
fn forward_writes_the_reference_logits() {
    let out = tmp("forward");
    let (ok, _, stderr) = icelens(&[
        "forward",
        "--model",
        &path(MODEL),
        "--input",
        &path("reference/odd_input.npy"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for chart in ["SIC", "SOD", "FLOE"] {
        let got =
            icelens_core::npy::read(&std::fs::read(out.join(format!("out_{chart}.npy"))).unwrap())
                .unwrap();
        let want = icelens_core::npy::read(
            &std::fs::read(shared().join(format!("reference/odd_out_{chart}.npy"))).unwrap(),
        )
        .unwrap();
        assert_eq!(got.shape, want.shape);
        let max = max_abs_diff(&got.to_f32().unwrap(), &want.to_f32().unwrap());
        assert!(max <= 1e-3, "{chart}: {max}");
    }
}

#[test]
fn predict_writes_an_upload_package_xarray_reads_as_uint8() {
    let upload = tmp("upload_package.nc");
    let pngs = tmp("png");
    let (ok, _, stderr) = icelens(&[
        "predict",
        "--model",
        &path(MODEL),
        &path(DMI),
        &path(CIS),
        &path(TEST),
        "--upload",
        upload.to_str().unwrap(),
        "--png",
        pngs.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for scene in [
        "20190412T103015_dmi",
        "20200117T211533_cis",
        "20211130T083012_dmi",
    ] {
        let png = std::fs::read(pngs.join(format!("{scene}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }
    // The challenge's evaluator opens the package with xarray: check it the same way, against
    // the package PyTorch's predictions made.
    let script = format!(
        r#"
import sys, xarray as xr, numpy as np
got = xr.open_dataset({got:?})
want = xr.open_dataset({want:?})
assert sorted(got.data_vars) == sorted(want.data_vars), (list(got.data_vars), list(want.data_vars))
for v in want.data_vars:
    assert got[v].dtype == np.uint8, (v, got[v].dtype)
    assert got[v].dims == (v + "_dim0", v + "_dim1"), got[v].dims
    assert got[v].shape == want[v].shape
    same = (got[v].values == want[v].values).mean()
    assert same > 0.999, (v, same)
print("ok", len(want.data_vars))
"#,
        got = upload.to_str().unwrap(),
        want = path("reference/upload_package_example.nc"),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with xarray (scripts/setup.sh test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ok 9"), "{text}");
}

#[test]
fn bad_models_give_one_error_line() {
    let scene = path(DMI);
    let wrong = tmp("scene_as_model.pt");
    std::fs::copy(shared().join(DMI), &wrong).unwrap();
    for (model, needle) in [
        (
            wrong.to_str().unwrap().to_string(),
            "not a model checkpoint",
        ),
        ("/nonexistent.pt".to_string(), "cannot be read"),
    ] {
        let (ok, _, stderr) = icelens(&["evaluate", "--model", &model, &scene]);
        assert!(!ok);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{stderr}"
        );
    }
}

#[test]
fn evaluate_by_condition_pools_like_the_challenge_and_compares_models() {
    // The second model is the first converted to burnpack: same numbers, zero differences.
    let bpk = tmp("pizza.bpk");
    let (ok, _, stderr) = icelens(&[
        "convert",
        "--model",
        &path(MODEL),
        "--out",
        bpk.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let csv = tmp("conditions.csv");
    let (ok, stdout, stderr) = icelens(&[
        "evaluate",
        "--model",
        &path(MODEL),
        "--model",
        bpk.to_str().unwrap(),
        &path(DMI),
        &path(CIS),
        "--by",
        "scene,service,mission,land,incidence,class",
        "--rank",
        "SOD",
        "--csv",
        csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let b = &got["breakdown"];
    assert_eq!(b["models"][1], "pizza.bpk");
    let rows = b["rows"].as_array().unwrap();
    let row = |dim: &str, group: &str| {
        rows.iter()
            .find(|r| r["dimension"] == dim && r["group"] == group)
            .unwrap_or_else(|| panic!("no row {dim}/{group}"))
    };
    // A scene row is that scene's challenge score; both scenes are S1B, so the mission row
    // is the pooled score.
    for (i, scene) in ["20190412T103015_dmi", "20200117T211533_cis"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            row("scene", scene)["models"][0]["scores"],
            got["scenes"][i]
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.remove("scene");
                    serde_json::Value::Object(o)
                })
                .unwrap()
        );
    }
    assert_eq!(row("mission", "S1B")["models"][0]["scores"], got["pooled"]);
    assert_eq!(row("service", "dmi")["models"][0]["small"], true);
    // Every distance band together holds every labelled pixel.
    let land: u64 = rows
        .iter()
        .filter(|r| r["dimension"] == "land")
        .map(|r| r["models"][0]["pixels"][0].as_u64().unwrap())
        .sum();
    assert_eq!(
        land,
        row("mission", "S1B")["models"][0]["pixels"][0]
            .as_u64()
            .unwrap()
    );
    // Worst first by SOD; the same weights give zero differences.
    let sod: Vec<f64> = rows
        .iter()
        .filter_map(|r| r["models"][0]["scores"]["SOD"].as_f64())
        .collect();
    assert!(sod.windows(2).all(|w| w[0] <= w[1]), "{sod:?}");
    for r in rows {
        assert_eq!(r["models"][1]["diff"]["SOD"].as_f64(), Some(0.0), "{r}");
    }
    assert!(rows.iter().all(|r| r["dimension"] != "class"));
    assert!(b["classes"][0]["classes"].as_array().unwrap().len() > 10);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 2 * rows.len());
    assert!(text.starts_with("dimension,group,model,SIC,SOD,FLOE,combined"));
    // A bad dimension is refused with the valid ones listed.
    let (ok, _, stderr) = icelens(&[
        "evaluate",
        "--model",
        &path(MODEL),
        &path(DMI),
        "--by",
        "colour",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("error:") && stderr.contains("colour") && stderr.contains("region"),
        "{stderr}"
    );
}

#[test]
fn convert_writes_each_format_and_refuses_an_unknown_one() {
    for ext in ["pt", "safetensors", "bpk"] {
        let out = tmp(&format!("converted.{ext}"));
        let (ok, _, stderr) = icelens(&[
            "convert",
            "--model",
            &path(MODEL),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{ext}: {stderr}");
        if ext == "pt" {
            // Decoded without icelens (Python's pickle and zipfile, numpy), the converted
            // checkpoint holds PyTorch's original state_dict: every tensor bit for bit, the
            // key order, num_batches_tracked and epoch. Fails when python3 or numpy is missing.
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../scripts/read_pt_independently.py"
            );
            let run = Command::new("python3")
                .arg(script)
                .arg(&out)
                .arg("--same-as")
                .arg(path(MODEL))
                .output()
                .expect("python3 runs (scripts/setup.sh test installs it with numpy)");
            let said = String::from_utf8_lossy(&run.stdout).into_owned()
                + &String::from_utf8_lossy(&run.stderr);
            assert!(run.status.success(), "{said}");
            assert!(said.contains("ok: 114 entries"), "{said}");
        }
        // Each converted model gives the original's logits.
        let dir = tmp(&format!("forward-{ext}"));
        let (ok, _, stderr) = icelens(&[
            "forward",
            "--model",
            out.to_str().unwrap(),
            "--input",
            &path("reference/odd_input.npy"),
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(ok, "{ext}: {stderr}");
        let a = std::fs::read(dir.join("out_SOD.npy")).unwrap();
        let want = std::fs::read(shared().join("reference/odd_out_SOD.npy")).unwrap();
        let (a, want) = (
            icelens_core::npy::read(&a).unwrap(),
            icelens_core::npy::read(&want).unwrap(),
        );
        let diff = max_abs_diff(&a.to_f32().unwrap(), &want.to_f32().unwrap());
        assert!(diff < 1e-3, "{ext}: {diff}");
    }
    let (ok, _, stderr) = icelens(&[
        "convert",
        "--model",
        &path(MODEL),
        "--out",
        tmp("x.onnx").to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("x.onnx") && stderr.contains(".safetensors"),
        "{stderr}"
    );
}

#[test]
fn finetune_trains_and_writes_a_model_that_loads_back() {
    // From scratch on one generated scene: a tiny network, a few steps.
    let dir = tmp("finetune");
    let scene_dir = dir.join("scenes");
    std::fs::create_dir_all(&scene_dir).unwrap();
    let (ok, _, stderr) = icelens(&[
        "synth",
        "--out",
        scene_dir.to_str().unwrap(),
        "--size",
        "160",
        "160",
        "--seed",
        "5",
    ]);
    assert!(ok, "{stderr}");
    let scene = std::fs::read_dir(&scene_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = dir.join("tiny.pt");
    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--filters",
        "4,8",
        scene.to_str().unwrap(),
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
        "2",
        "--lr",
        "0.01",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("epoch 2:") && stderr.contains("wrote"),
        "{stderr}"
    );
    // The written .pt is a U-Net icelens reads back and runs.
    let (ok, stdout, stderr) = icelens(&[
        "evaluate",
        "--model",
        out.to_str().unwrap(),
        scene.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(got["pooled"]["combined"].is_number(), "{got}");

    // Transfer from the reference checkpoint with a frozen encoder, to burnpack with a note.
    let bpk = dir.join("tuned.bpk");
    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--model",
        &path(MODEL),
        &path(DMI),
        "--out",
        bpk.to_str().unwrap(),
        "--patches",
        "4",
        "--patch-size",
        "64",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--freeze",
        "encoder",
        "--note",
        "data=one fixture",
    ]);
    assert!(ok, "{stderr}");
    let sd = icelens_core::checkpoint::load_state_dict("tuned.bpk", &std::fs::read(&bpk).unwrap())
        .unwrap();
    assert_eq!(
        sd.metadata.get("data").map(String::as_str),
        Some("one fixture")
    );
    let original = icelens_core::checkpoint::load_state_dict(
        "m.pt",
        &std::fs::read(shared().join(MODEL)).unwrap(),
    )
    .unwrap();
    // The frozen encoder is exactly as loaded; the decoder heads moved.
    let same = |k: &str| sd.tensors[k].data == original.tensors[k].data;
    assert!(same("input_block.double_conv.0.weight"), "encoder frozen");
    assert!(!same("sod_feature_map.feature_out.weight"), "head trained");

    // The page's subsets from the command line: a rectangle, balanced by service; a
    // condition; and what cannot be done, said in one line.
    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--filters",
        "4,8",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--patches",
        "4",
        "--patch-size",
        "32",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--area",
        "10,20,80,70",
        "--balance",
        "service",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("inside rows 10..90, columns 20..90, balanced by service"),
        "{stderr}"
    );
    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--filters",
        "4,8",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--patches",
        "4",
        "--patch-size",
        "32",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--condition",
        "service=dmi",
    ]);
    assert!(ok && stderr.contains("centred on"), "{stderr}");
    for (flag, value, says) in [
        (
            "--condition",
            "service=nowhere",
            "no pixel of the scenes belongs to it",
        ),
        ("--balance", "land", "cannot balance by land"),
        ("--area", "1,2,3", "ROW,COL,HEIGHT,WIDTH"),
        ("--device", "tpu", "use gpu or cpu"),
    ] {
        let (ok, _, stderr) = icelens(&[
            "finetune",
            "--filters",
            "4,8",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--patch-size",
            "32",
            flag,
            value,
        ]);
        assert!(!ok && stderr.contains(says), "{flag} {value}: {stderr}");
    }

    // Bad requests: one error line each.
    let (ok, _, stderr) = icelens(&["finetune", &path(DMI), "--out", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("--filters"), "{stderr}");
    let (ok, _, stderr) = icelens(&[
        "finetune",
        "--filters",
        "4,x",
        &path(DMI),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("4,x"), "{stderr}");
}

/// The challenge runs one forward pass over the whole scene (spec §f); tiles change the
/// answer. A scene larger than the old 1024² limit now runs whole when it fits the memory
/// budget, giving exactly the argmax of the forward pass over the whole input, and in tiles
/// (said on stderr) when `--memory` is too small for that.
#[test]
fn predict_runs_a_scene_whole_when_it_fits_and_in_tiles_when_not() {
    let dir = tmp("whole");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scene = dir.join("20210315T101500_dmi_prep.nc");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let (ok, _, stderr) = icelens(args);
        assert!(ok, "{args:?}: {stderr}");
        stderr
    };
    run(&[
        "synth",
        "--out",
        &s(&scene),
        "--size",
        "1200",
        "1000",
        "--seed",
        "7",
    ]);
    let x = dir.join("x.npy");
    run(&["input", &s(&scene), "--out", &s(&x)]);
    let fwd = dir.join("forward");
    run(&[
        "forward",
        "--model",
        &path(MODEL),
        "--input",
        &s(&x),
        "--out",
        &s(&fwd),
    ]);
    let (model, scene_arg) = (path(MODEL), s(&scene));
    let predict = |upload: &PathBuf, extra: &[&str]| {
        let upload = s(upload);
        let mut args = vec![
            "predict", "--model", &model, &scene_arg, "--upload", &upload,
        ];
        args.extend(extra);
        run(&args)
    };
    let whole = dir.join("whole.nc");
    let said = predict(&whole, &[]);
    assert!(said.contains("1200 x 1000 px whole"), "{said}");
    let tiled = dir.join("tiled.nc");
    let said = predict(&tiled, &["--memory", "400M"]);
    assert!(said.contains("px tiles (memory budget 0.4 GiB)"), "{said}");
    // The page's tiles, asked for.
    let page_tiles = dir.join("page_tiles.nc");
    let said = predict(&page_tiles, &["--tile", "384"]);
    assert!(
        said.contains("1200 x 1000 px in 384 px tiles (--tile 384)"),
        "{said}"
    );
    let script = format!(
        r#"
import numpy as np, xarray as xr
whole = xr.open_dataset({whole:?})
tiled = xr.open_dataset({tiled:?})
for chart in ("SIC", "SOD", "FLOE"):
    v = "20210315T101500_dmi_" + chart
    want = np.load({fwd:?} + "/out_" + chart + ".npy")[0].argmax(0)
    assert (whole[v].values == want).all(), (chart, (whole[v].values != want).sum())
    same = (tiled[v].values == want).mean()
    assert 0.99 < same < 1.0, (chart, same)
    page = xr.open_dataset({page_tiles:?})[v].values
    assert 0.98 < (page == want).mean() < 1.0, (chart, (page == want).mean())
    print(chart, same)
print("ok")
"#,
        whole = s(&whole),
        tiled = s(&tiled),
        page_tiles = s(&page_tiles),
        fwd = s(&fwd),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with xarray");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("ok"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
