//! Reading the files named on the command line: scenes and checkpoints, each error naming the
//! file. Every command takes its inputs from here.

use std::path::Path;

use icelens_core::checkpoint::load_state_dict;
use icelens_core::{read_scene, ReadLimits, Scene};
use icelens_model::UNet;

/// Reads a scene file; the error already names the file.
pub fn load(path: &Path) -> Result<Scene, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    read_scene(&name, bytes, &ReadLimits::default()).map_err(|e| e.to_string())
}

/// Reads a checkpoint (.pt or safetensors) and builds the network.
pub fn load_model(path: &Path) -> Result<UNet, String> {
    load_model_with_fingerprint(path).map(|(net, _)| net)
}

/// The network and the fingerprint of the checkpoint's bytes (what partial results name a
/// model by, besides its file name).
pub fn load_model_with_fingerprint(path: &Path) -> Result<(UNet, String), String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot be read ({e})"))?;
    let sd = load_state_dict(&name, &bytes).map_err(|e| e.to_string())?;
    let net = UNet::from_state_dict(&sd).map_err(|e| format!("{name}: {e}"))?;
    Ok((net, icelens_core::breakdown::fingerprint(&bytes)))
}

/// The name a model goes by in tables: its file name, as the page shows it.
pub fn model_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
