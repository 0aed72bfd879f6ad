//! `icelens`: the command line face of icelens, for batch work on scene files.
//!
//! Every failure prints one line starting with `error:` on stderr and exits non-zero; where a
//! command takes several scenes, a bad one is reported and the others are still processed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use icelens_core::input::{Window, N_INPUT};
use icelens_core::npy;
use icelens_core::shard::Shard;
use icelens_core::stats::SceneSummary;
use icelens_core::synth::{generate, SynthSpec};

use inputs::load;
use memory::{Memory, Plan};

mod dataset;
mod evaluate;
mod finetune;
mod inputs;
mod memory;
mod model_cmds;
mod report;

#[derive(Parser)]
#[command(
    name = "icelens",
    version,
    about = "Sea ice charts from Sentinel-1 scenes (AI4Arctic)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dimensions, variables, metadata, valid pixels and class histograms of scenes.
    Inspect {
        #[arg(required = true)]
        scenes: Vec<PathBuf>,
        /// Print one JSON document (an array with one object per scene).
        #[arg(long)]
        json: bool,
    },
    /// Write the 24-channel model input of a scene as a float32 .npy of shape [1, 24, H, W].
    Input {
        scene: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Only this window: ROW,COL,HEIGHT,WIDTH.
        #[arg(long)]
        window: Option<String>,
    },
    /// Raw head outputs of a model for a `[1, 24, H, W]` .npy input: out_SIC/SOD/FLOE.npy.
    Forward {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Predict scenes and write the challenge's upload package (and PNGs).
    Predict {
        #[arg(long)]
        model: PathBuf,
        #[arg(required = true)]
        scenes: Vec<PathBuf>,
        /// The upload package to write (netCDF, one uint8 variable per scene and chart).
        #[arg(long)]
        upload: PathBuf,
        /// Also write one PNG per scene with the three charts in the challenge colours.
        #[arg(long)]
        png: Option<PathBuf>,
        /// For an attention U-Net, also write its coefficients on the scene grid:
        /// DIR/<scene>_attention_<k>.npy, uint8 round(255 ψ), k = 0 the deepest block.
        #[arg(long, value_name = "DIR")]
        attention: Option<PathBuf>,
        /// Memory one scene's run may hold (e.g. 12G): a scene that fits goes through the
        /// network whole, as the challenge runs it; a larger one in the largest tiles that fit.
        /// Default: three quarters of the memory available when the scene starts.
        #[arg(long, value_name = "SIZE", default_value = "available")]
        memory: Memory,
        /// Run every scene in tiles of this many pixels (128 px halo) instead, as the page
        /// does with 384: its answer, natively.
        #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u64).range(64..=16384))]
        tile: Option<u64>,
        /// Only shard K of N (K from 1): scene i of the list sorted by file name goes to
        /// shard i mod N + 1.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
    },
    /// Score models on labelled scenes exactly as the challenge does: per scene and pooled,
    /// and with --by, broken down by condition (worst first), models side by side.
    Evaluate {
        /// A checkpoint; repeat for several models (the first is the baseline of differences).
        #[arg(long, required = true)]
        model: Vec<PathBuf>,
        #[arg(required = true)]
        scenes: Vec<PathBuf>,
        /// Print {"pooled": {...}, "scenes": [...], "models": [...], "breakdown": {...}} as JSON.
        #[arg(long)]
        json: bool,
        /// Conditions to break the scores down by, comma-separated:
        /// scene,service,region,mission,year,month,season,land,incidence,class (or all).
        #[arg(long)]
        by: Option<String>,
        /// Score the ranking uses: SIC, SOD, FLOE or combined.
        #[arg(long, default_value = "combined")]
        rank: String,
        /// Also write the breakdown as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Also draw the breakdown as SVG charts into this folder (scores per condition,
        /// confusion matrices, scenes per service/region/month/year/mission).
        #[arg(long)]
        plots: Option<PathBuf>,
        /// Only shard K of N (K from 1): scene i of the list sorted by file name goes to
        /// shard i mod N + 1.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
        /// Also write the counts `icelens merge` pools into this JSON file (scenes that
        /// cannot be scored are recorded there and no longer make the exit code non-zero).
        #[arg(long, value_name = "OUT.json")]
        partial: Option<PathBuf>,
        /// Memory one scene's run may hold (e.g. 12G): a scene that fits goes through the
        /// network whole, as the challenge runs it; a larger one in the largest tiles that fit.
        /// Default: three quarters of the memory available when the scene starts.
        #[arg(long, value_name = "SIZE", default_value = "available")]
        memory: Memory,
        /// Run every scene in tiles of this many pixels (128 px halo) instead, as the page
        /// does with 384: its answer, natively.
        #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u64).range(64..=16384))]
        tile: Option<u64>,
    },
    /// Pool the parts `evaluate --partial` wrote (e.g. one per shard) into the scores and
    /// breakdown of one evaluation over all their scenes.
    Merge {
        #[arg(required = true, value_name = "PARTS")]
        parts: Vec<PathBuf>,
        /// Print the JSON `evaluate --json` prints.
        #[arg(long)]
        json: bool,
        /// Conditions to break the scores down by, as for evaluate.
        #[arg(long)]
        by: Option<String>,
        /// Score the ranking uses: SIC, SOD, FLOE or combined.
        #[arg(long, default_value = "combined")]
        rank: String,
        /// Also write the breakdown as CSV.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Also write the pooled counts as one part (of a whole run) into this JSON file: what
        /// the page's "Where is it worst" opens, and what merges alone into this same result.
        #[arg(long, value_name = "MERGED.json")]
        out: Option<PathBuf>,
    },
    /// Train a U-Net on labelled scenes: transfer from --model, from scratch with --filters,
    /// or from a smaller --model into --filters; writes the best-validation weights.
    Finetune {
        /// Start from this checkpoint (with --filters: copy its matching levels).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Filters per level for a new network, e.g. 16,32,32,32.
        #[arg(long)]
        filters: Option<String>,
        /// A regression SIC head (one output) for a new network.
        #[arg(long)]
        regression: bool,
        /// A new network with attention gates (the team's UNetAttention); with --model, the
        /// gates start fresh and the rest is copied.
        #[arg(long)]
        attention: bool,
        #[arg(required = true)]
        scenes: Vec<PathBuf>,
        /// The trained model: .pt, .safetensors or .bpk.
        #[arg(long)]
        out: PathBuf,
        /// Patches drawn from the scenes (training and validation together).
        #[arg(long, default_value_t = 64)]
        patches: usize,
        #[arg(long, default_value_t = 256)]
        patch_size: usize,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Steps between validations.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value_t = 1e-4)]
        lr: f64,
        /// Share of patches held out (from other scenes when there are several).
        #[arg(long, default_value_t = 0.2)]
        val: f64,
        /// Stop after this many validations without improvement (0: never).
        #[arg(long, default_value_t = 3)]
        patience: usize,
        /// none, encoder or encoder+bridge.
        #[arg(long, default_value = "none")]
        freeze: String,
        /// Loss weights of SIC, SOD and FLOE.
        #[arg(long, num_args = 3, value_names = ["SIC", "SOD", "FLOE"])]
        weights: Option<Vec<f32>>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// KEY=VALUE notes stored in a .bpk model (e.g. data=synthetic).
        #[arg(long)]
        note: Vec<String>,
        /// Draw patches only inside this rectangle of every scene: ROW,COL,HEIGHT,WIDTH.
        #[arg(long)]
        area: Option<String>,
        /// Draw patches centred on the pixels of a condition, e.g. land=0-2km, class=SOD:3,
        /// region=SouthEast (the groups `evaluate --by` prints).
        #[arg(long)]
        condition: Option<String>,
        /// Draw every group of scenes of this dimension (service, region, month...) as often.
        #[arg(long)]
        balance: Option<String>,
        /// With --balance: draw each group with its test-set share from this atlas
        /// (`icelens dataset --json > atlas.json`) instead of equally.
        #[arg(long, value_name = "ATLAS.json")]
        weights_from: Option<PathBuf>,
        /// gpu (burn's wgpu backend: Vulkan, Metal, DX12) or cpu (burn's flex backend).
        #[arg(long, default_value = "gpu")]
        device: String,
    },
    /// Training against test distributions of a dataset from its file names (service,
    /// region, mission, year, month, season, hour), class balance per group from the class
    /// pixel table, and reweighting weights (test share / training share). Without lists:
    /// the real AI4Arctic dataset's, shipped with icelens.
    Dataset {
        /// Training scene names: a JSON list, a text file (one name a line) or a folder
        /// (its .nc file names; the files are not read).
        #[arg(long)]
        train: Option<PathBuf>,
        /// Test scene names, in the same forms.
        #[arg(long)]
        test: Option<PathBuf>,
        /// Class pixel table of the training scenes (scene,chart,class,pixels).
        #[arg(long)]
        pixels: Option<PathBuf>,
        /// The dimension whose weights (and class balance, in text) are shown.
        #[arg(long, default_value = "region")]
        dimension: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        csv: bool,
    },
    /// Write a model in another format: .pt (PyTorch), .safetensors or .bpk (burnpack).
    Convert {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a synthetic scene with the ready-to-train layout (netCDF-3).
    Synth {
        /// Output file or folder (the file is then named like a ready-to-train scene).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, num_args = 2, value_names = ["LINES", "SAMPLES"], default_values_t = [600, 500])]
        size: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// `dmi` or `cis`.
        #[arg(long, default_value = "dmi")]
        service: String,
        /// Acquisition time YYYYMMDDThhmmss.
        #[arg(long, default_value = "20210315T101500")]
        stamp: String,
        /// Leave out SIC/SOD/FLOE, like the test set.
        #[arg(long)]
        test_style: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { scenes, json } => inspect(&scenes, json),
        Command::Input { scene, out, window } => input(&scene, &out, window.as_deref()),
        Command::Forward { model, input, out } => model_cmds::forward(&model, &input, &out),
        Command::Predict {
            model,
            scenes,
            upload,
            png,
            attention,
            shard,
            memory,
            tile,
        } => model_cmds::predict(
            &model,
            &scenes,
            &model_cmds::Outputs {
                upload: &upload,
                png: png.as_deref(),
                attention: attention.as_deref(),
            },
            shard,
            Plan {
                memory,
                tile: tile.map(|t| t as usize),
            },
        ),
        Command::Evaluate {
            model,
            scenes,
            json,
            by,
            rank,
            csv,
            plots,
            shard,
            partial,
            memory,
            tile,
        } => evaluate::evaluate(&evaluate::Request {
            models: &model,
            scenes: &scenes,
            json,
            by: by.as_deref(),
            rank: &rank,
            csv: csv.as_deref(),
            plots: plots.as_deref(),
            shard,
            partial: partial.as_deref(),
            plan: Plan {
                memory,
                tile: tile.map(|t| t as usize),
            },
        }),
        Command::Merge {
            parts,
            json,
            by,
            rank,
            csv,
            out,
        } => evaluate::merge(&evaluate::MergeRequest {
            parts: &parts,
            json,
            by: by.as_deref(),
            rank: &rank,
            csv: csv.as_deref(),
            out: out.as_deref(),
        }),
        Command::Dataset {
            train,
            test,
            pixels,
            dimension,
            json,
            csv,
        } => dataset::dataset(&dataset::Request {
            train: train.as_deref(),
            test: test.as_deref(),
            pixels: pixels.as_deref(),
            dimension: &dimension,
            json,
            csv,
        }),
        Command::Convert { model, out } => model_cmds::convert(&model, &out),
        Command::Finetune {
            model,
            filters,
            regression,
            attention,
            scenes,
            out,
            patches,
            patch_size,
            batch,
            epochs,
            steps,
            lr,
            val,
            patience,
            freeze,
            weights,
            seed,
            note,
            area,
            condition,
            balance,
            weights_from,
            device,
        } => finetune::parse_freeze(&freeze).and_then(|freeze| {
            let notes: Vec<(String, String)> = note
                .iter()
                .filter_map(|n| {
                    n.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            let sic = if regression {
                icelens_model::SicHead::Regression
            } else {
                icelens_model::SicHead::Classification
            };
            let config = icelens_model::train::TrainConfig {
                lr,
                batch_size: batch,
                epochs,
                steps_per_epoch: steps,
                patch_size,
                val_fraction: val,
                patience,
                freeze,
                chart_weights: weights
                    .map(|w| [w[0], w[1], w[2]])
                    .unwrap_or_else(|| icelens_model::train::TrainConfig::default_weights(sic)),
                seed,
            };
            finetune::finetune(&finetune::Request {
                model: model.as_deref(),
                filters: filters.as_deref(),
                regression,
                attention,
                scenes: &scenes,
                out: &out,
                patches,
                config,
                notes: &notes,
                subset: finetune::Subset::parse(
                    area.as_deref(),
                    condition.as_deref(),
                    balance.as_deref(),
                    weights_from.as_deref(),
                )?,
                device: finetune::parse_device(&device)?,
            })
        }),
        Command::Synth {
            out,
            size,
            seed,
            service,
            stamp,
            test_style,
        } => synth(&out, &size, seed, service, stamp, test_style),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn inspect(paths: &[PathBuf], json: bool) -> Result<(), String> {
    let mut summaries = Vec::new();
    let mut failed = 0;
    for path in paths {
        match load(path) {
            Ok(scene) => {
                let summary = SceneSummary::of(&scene);
                if !json {
                    print!("{}", report::scene_text(&scene, &summary));
                }
                summaries.push(summary);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&summaries).map_err(|e| e.to_string())?;
        println!("{text}");
    }
    if failed > 0 {
        // Each failure was already reported on its own line.
        return Err(String::new());
    }
    Ok(())
}

fn input(path: &Path, out: &Path, window: Option<&str>) -> Result<(), String> {
    let scene = load(path)?;
    let window = match window {
        Some(w) => Window::parse(w)?,
        None => Window::full(&scene),
    };
    let values = scene
        .input_window(window)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = npy::write_f32(&[1, N_INPUT, window.height, window.width], &values);
    std::fs::write(out, bytes).map_err(|e| format!("{}: cannot be written ({e})", out.display()))
}

fn synth(
    out: &Path,
    size: &[usize],
    seed: u64,
    service: String,
    stamp: String,
    test_style: bool,
) -> Result<(), String> {
    if !matches!(service.as_str(), "dmi" | "cis") {
        return Err(format!("--service must be dmi or cis, not {service}"));
    }
    if icelens_core::meta::Timestamp::parse_compact(&stamp).is_none() || !stamp.contains('T') {
        return Err(format!(
            "--stamp must look like 20210315T101500, not {stamp}"
        ));
    }
    let (lines, samples) = (size[0], size[1]);
    if lines < 50 || samples < 50 || lines * samples > 60_000_000 {
        return Err(format!(
            "--size {lines} {samples}: scenes are 50 x 50 to 60 million pixels"
        ));
    }
    let spec = SynthSpec {
        lines,
        samples,
        seed,
        service,
        stamp,
        labelled: !test_style,
    };
    let path = if out.is_dir() {
        out.join(spec.file_name())
    } else {
        out.to_path_buf()
    };
    let bytes = generate(&spec).to_netcdf()?;
    std::fs::write(&path, bytes)
        .map_err(|e| format!("{}: cannot be written ({e})", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
