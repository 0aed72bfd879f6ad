//! `forward`, `predict` and `evaluate`: the commands that run a model.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use icelens_core::checkpoint::{load_state_dict, write_burnpack, write_safetensors, write_torch};
use icelens_core::render::chart_rgba;
use icelens_core::shard::Shard;
use icelens_core::upload::{write_upload, UploadScene};
use icelens_core::{npy, Chart, Scene};
use icelens_model::cpu::Feature;
use icelens_model::{infer_scene, Kind, Prediction, UNet};

use crate::inputs::{load, load_model, model_name};
use crate::memory::Plan;

pub fn forward(model: &Path, input: &Path, out: &Path) -> Result<(), String> {
    let net = load_model(model)?;
    let name = input.display();
    let bytes = std::fs::read(input).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    let arr = npy::read(&bytes).map_err(|e| format!("{name}: {e}"))?;
    let [1, c, h, w] = arr.shape[..] else {
        return Err(format!("{name}: shape {:?} is not [1, C, H, W]", arr.shape));
    };
    if c != net.arch.in_channels {
        return Err(format!(
            "{name}: has {c} channels, the model takes {}",
            net.arch.in_channels
        ));
    }
    let data = arr.to_f32().map_err(|e| format!("{name}: {e}"))?;
    let (outputs, psis) = net.forward_with_attention(&Feature { c, h, w, data });
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |file: String, f: &Feature| {
        let path = out.join(file);
        std::fs::write(&path, npy::write_f32(&[1, f.c, f.h, f.w], &f.data))
            .map_err(|e| format!("{}: cannot be written ({e})", path.display()))
    };
    for chart in Chart::ALL {
        write(format!("out_{}.npy", chart.name()), outputs.get(chart))?;
    }
    // An attention U-Net's coefficients psi, `expand_blocks.<k>`, k = 0 the deepest.
    for (k, psi) in psis.iter().enumerate() {
        write(format!("attention_{k}.npy"), psi)?;
    }
    Ok(())
}

/// Runs the model over a scene, whole when it fits `memory`, showing tile progress on a
/// terminal.
pub fn run(
    net: &UNet,
    scene: &Scene,
    index: usize,
    count: usize,
    plan: Plan,
) -> Result<Prediction, String> {
    let tty = std::io::stderr().is_terminal();
    let label = format!("[{}/{}] {}", index + 1, count, scene.meta.scene);
    let started = std::time::Instant::now();
    let (opts, budget) = plan.options(&net.arch, scene.lines, scene.samples);
    let how = if opts.runs_whole(scene.lines, scene.samples) {
        "whole".to_string()
    } else {
        format!("in {} px tiles", opts.tile)
    };
    let pred = infer_scene(net, scene, &opts, &mut |done, total| {
        if tty {
            eprint!("\r{label}: tile {done}/{total}");
        }
        true
    })
    .map_err(|e| e.to_string())?;
    if tty {
        eprint!("\r");
    }
    let why = match plan.tile {
        Some(tile) => format!("--tile {tile}"),
        None => format!(
            "memory budget {:.1} GiB",
            budget as f64 / f64::from(1u32 << 30)
        ),
    };
    eprintln!(
        "{label}: {} x {} px {how} ({why}) in {:.1} s",
        scene.lines,
        scene.samples,
        started.elapsed().as_secs_f64()
    );
    Ok(pred)
}

/// What `predict` writes besides nothing.
pub struct Outputs<'a> {
    /// The upload package.
    pub upload: &'a Path,
    /// A folder for one PNG per scene.
    pub png: Option<&'a Path>,
    /// A folder for an attention U-Net's ψ maps.
    pub attention: Option<&'a Path>,
}

pub fn predict(
    model: &Path,
    scenes: &[PathBuf],
    outputs: &Outputs,
    shard: Option<Shard>,
    plan: Plan,
) -> Result<(), String> {
    let upload = outputs.upload;
    let net = load_model(model)?;
    if outputs.attention.is_some() && net.arch.kind == Kind::Plain {
        return Err(format!(
            "--attention: {} is a plain U-Net; only an attention U-Net has attention coefficients",
            model.display()
        ));
    }
    let selected;
    let scenes = match shard {
        Some(shard) => {
            selected = shard.select(scenes);
            eprintln!(
                "shard {shard}: {} of {} scenes",
                selected.len(),
                scenes.len()
            );
            &selected[..]
        }
        None => scenes,
    };
    let mut done: Vec<(Scene, Prediction)> = Vec::new();
    let mut failed = 0;
    for (i, path) in scenes.iter().enumerate() {
        let result = load(path).and_then(|scene| {
            let pred = run(&net, &scene, i, scenes.len(), plan)?;
            Ok((scene, pred))
        });
        match result {
            Ok(pair) => {
                if let Some(dir) = outputs.png {
                    write_png(dir, &pair.0, &pair.1)?;
                }
                if let Some(dir) = outputs.attention {
                    write_attention_maps(dir, &pair.0, &pair.1)?;
                }
                done.push(pair);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    let entries: Vec<UploadScene<'_>> = done.iter().map(|(s, p)| p.upload_scene(s)).collect();
    let name = upload.display().to_string();
    let bytes = write_upload(&name, &entries)?;
    std::fs::write(upload, bytes).map_err(|e| format!("{name}: cannot be written ({e})"))?;
    eprintln!("wrote {name} ({} scenes)", entries.len());
    if failed > 0 {
        return Err(String::new());
    }
    Ok(())
}

/// Three panels (SIC, SOD, FLOE) in the challenge colours; no-data pixels white.
/// `<scene>_attention_<k>.npy` per expanding block, as the prediction holds them.
fn write_attention_maps(dir: &Path, scene: &Scene, pred: &Prediction) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (k, map) in pred.attention.iter().enumerate() {
        let path = dir.join(format!("{}_attention_{k}.npy", scene.meta.scene));
        std::fs::write(&path, npy::write_u8(&[scene.lines, scene.samples], map))
            .map_err(|e| format!("{}: cannot be written ({e})", path.display()))?;
    }
    Ok(())
}

fn write_png(dir: &Path, scene: &Scene, pred: &Prediction) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (h, w, gap) = (scene.lines, scene.samples, 8);
    let width = 3 * w + 2 * gap;
    let mut rgba = vec![255u8; width * h * 4];
    for (k, chart) in Chart::ALL.iter().enumerate() {
        let layer = chart_rgba(pred.chart(*chart), *chart, 255);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if !scene.is_valid(i) || layer[i * 4 + 3] == 0 {
                    continue;
                }
                let o = (y * width + k * (w + gap) + x) * 4;
                rgba[o..o + 4].copy_from_slice(&layer[i * 4..i * 4 + 4]);
            }
        }
    }
    let path = dir.join(format!("{}.png", scene.meta.scene));
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, h as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut wr| wr.write_image_data(&rgba))
        .map_err(|e| format!("{}: cannot be written ({e})", path.display()))
}

/// Rewrites a checkpoint in the format its extension names. The weights are checked to be a
/// U-Net icelens can run before anything is written.
pub fn convert(model: &Path, out: &Path) -> Result<(), String> {
    let name = model.display().to_string();
    let bytes = std::fs::read(model).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    let sd = load_state_dict(&name, &bytes).map_err(|e| e.to_string())?;
    UNet::from_state_dict(&sd).map_err(|e| format!("{name}: {e}"))?;
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let data = match ext.as_str() {
        "pt" | "pth" => write_torch(&sd, sd.epoch),
        "safetensors" => write_safetensors(&sd),
        "bpk" => write_burnpack(&sd, &[("source", &model_name(model))]),
        _ => {
            return Err(format!(
                "{}: unknown model format; use .pt, .safetensors or .bpk",
                out.display()
            ))
        }
    };
    std::fs::write(out, data).map_err(|e| format!("{}: cannot be written ({e})", out.display()))
}
