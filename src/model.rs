//! A model the user loaded (or fine-tuned in the page): its network for the CPU, its weights
//! as loaded, and the notes stored with them.

use std::sync::Arc;

use icelens_core::checkpoint::{load_state_dict, StateDict};
use icelens_model::{Kind, UNet};

/// A model the user loaded.
#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub net: UNet,
    pub epoch: Option<i64>,
    /// Notes stored with the weights (burnpack or safetensors metadata), e.g. what a model was
    /// trained on.
    pub notes: Vec<(String, String)>,
    /// The weights as loaded: fine-tuning starts from them and exports keep their key order.
    pub state: Arc<StateDict>,
}

impl Model {
    /// Expanding blocks with attention coefficients to show (0 for a plain U-Net).
    pub fn attention_blocks(&self) -> usize {
        match self.net.arch.kind {
            Kind::Plain => 0,
            Kind::Attention => self.net.arch.levels(),
        }
    }
}

/// A model from a checkpoint file's bytes (torch.save zip, safetensors or burnpack).
pub fn load_model(name: &str, bytes: &[u8]) -> Result<Model, String> {
    let sd = load_state_dict(name, bytes).map_err(|e| e.to_string())?;
    model_from_state(name, sd)
}

/// A model from weights already in memory (a file's, or a fine-tuning run's).
pub fn model_from_state(name: &str, sd: StateDict) -> Result<Model, String> {
    let net = UNet::from_state_dict(&sd).map_err(|e| format!("{name}: {e}"))?;
    Ok(Model {
        name: name.to_string(),
        net,
        epoch: sd.epoch,
        notes: sd
            .metadata
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "data" | "purpose" | "trained_with"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        state: Arc::new(sd),
    })
}
