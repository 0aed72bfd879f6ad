//! The messages between the page and its Web Worker, defined once for both sides.
//!
//! A message travels as `{ msg, data }`: `msg` is one of these enums as JSON text, `data` its
//! bulk beside it (a `File`, checkpoint bytes, tile values as typed arrays), so that buffers
//! are transferred rather than copied or serialised. The page sends [`ToWorker`] and hears
//! [`FromWorker`]; the worker the other way round. Parsing is checked: a message that is not
//! one of these is an error, never a guess.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::input::Window;

/// What the page asks of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ToWorker {
    /// Read the scene file in `data` (a `File`) and decode its big arrays `arrays`
    /// ([`crate::read::BIG_ARRAYS`] order; those the scene lacks are skipped), and its small
    /// parts when `small`; answered by progress, then [`FromWorker::Scene`]. Several workers
    /// share one file's arrays out this way ([`crate::transfer::share_out`]). With
    /// `picture` (a [`crate::render::SarView`] key) and HH and HV among its arrays, the
    /// worker sends [`FromWorker::Picture`] as soon as it has decoded them.
    Decode {
        arrays: Vec<usize>,
        small: bool,
        picture: Option<String>,
    },
    /// Keep the network of the checkpoint in `data` (bytes) under `name`; answered by
    /// [`FromWorker::Done`].
    Model { id: u32, name: String },
    /// Read the checkpoint in `data` (bytes) and say which network it is; answered by
    /// [`FromWorker::Checked`]. Whatever the file does costs the worker, never the page.
    CheckModel { name: String },
    /// Run the network kept as `model` on the input of `window` in `data` (float32,
    /// `[24, height, width]`) and keep the prediction of `core` (inside `window`); answered by
    /// [`FromWorker::Tile`].
    Tile {
        id: u32,
        model: String,
        window: Window,
        core: Window,
    },
}

/// What a worker tells the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FromWorker {
    /// Listening (messages sent before are not lost, but a page that hears nothing can tell
    /// a worker that failed to start).
    Ready,
    /// Reading or decoding a file: `done` of `total`.
    Progress {
        stage: String,
        done: f64,
        total: f64,
    },
    /// A scene's arrays, decoded: in `data`, the 2 km channels when `header` is there (the
    /// header of [`crate::transfer::Parts`], from [`crate::transfer::split_small`]), then the
    /// big arrays listed in `arrays`, in that order.
    Scene {
        header: Option<String>,
        arrays: Vec<usize>,
    },
    /// The SAR picture of the scene being decoded, `lines` x `samples`, as RGBA bytes in
    /// `data` ([`crate::render::sar_rgba_of`]): the page shows it before the rest arrives.
    Picture { lines: usize, samples: usize },
    /// A model is kept.
    Done { id: u32 },
    /// A checkpoint was read whole: its network's name.
    Checked { architecture: String },
    /// The prediction of a tile's core, `lines` x `samples`, what the page keeps of it: in
    /// `data`, the class maps of SIC, SOD and FLOE (uint8), their confidences (float32), the
    /// continuous SIC of a regression head when `sic_value`, then ψ of each of the
    /// `attention` expanding blocks (uint8), every one `lines * samples` long.
    Tile {
        id: u32,
        lines: usize,
        samples: usize,
        sic_value: bool,
        attention: usize,
    },
    /// A request failed (`id` when it had one). Without one, the worker itself failed (its
    /// panic hook speaks just before it ends).
    Error { id: Option<u32>, message: String },
}

/// A message that is none of the above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a message the {side} does not understand: {reason}")]
pub struct MessageError {
    pub side: &'static str,
    pub reason: String,
}

impl ToWorker {
    /// The request id an answer will carry, if any.
    pub fn id(&self) -> Option<u32> {
        match self {
            ToWorker::Model { id, .. } | ToWorker::Tile { id, .. } => Some(*id),
            _ => None,
        }
    }

    pub fn encode(&self) -> String {
        encode(self)
    }

    pub fn decode(text: &str) -> Result<Self, MessageError> {
        decode(text, "worker")
    }
}

impl FromWorker {
    pub fn encode(&self) -> String {
        encode(self)
    }

    pub fn decode(text: &str) -> Result<Self, MessageError> {
        decode(text, "page")
    }

    /// The request this message answers, if any.
    pub fn id(&self) -> Option<u32> {
        match self {
            FromWorker::Done { id } | FromWorker::Tile { id, .. } => Some(*id),
            FromWorker::Error { id, .. } => *id,
            _ => None,
        }
    }
}

fn encode(msg: &impl Serialize) -> String {
    // Plain data: serialising cannot fail.
    serde_json::to_string(msg).unwrap_or_default()
}

/// A message of either direction; `side` is the one reading it.
fn decode<T: DeserializeOwned>(text: &str, side: &'static str) -> Result<T, MessageError> {
    serde_json::from_str(text).map_err(|e| MessageError {
        side,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_the_trip() {
        let to = [
            ToWorker::Decode {
                arrays: vec![1, 3, 5],
                small: true,
                picture: Some("FC".into()),
            },
            ToWorker::Model {
                id: 3,
                name: "m.pt#1f".into(),
            },
            ToWorker::CheckModel {
                name: "ü.pt".into(),
            },
            ToWorker::Tile {
                id: 4_000_000_000,
                model: "m".into(),
                window: Window::new(256, 0, 640, 512),
                core: Window::new(384, 0, 384, 384),
            },
        ];
        for m in to {
            assert_eq!(ToWorker::decode(&m.encode()).unwrap(), m);
        }
        let from = [
            FromWorker::Ready,
            FromWorker::Progress {
                stage: "reading".into(),
                done: 8.0,
                total: 45.5,
            },
            FromWorker::Scene {
                header: Some("{\"file\":\"a\"}".into()),
                arrays: vec![0, 2, 4, 6],
            },
            FromWorker::Scene {
                header: None,
                arrays: vec![],
            },
            FromWorker::Picture {
                lines: 5000,
                samples: 5200,
            },
            FromWorker::Done { id: 1 },
            FromWorker::Checked {
                architecture: "attention U-Net".into(),
            },
            FromWorker::Tile {
                id: 2,
                lines: 384,
                samples: 200,
                sic_value: true,
                attention: 4,
            },
            FromWorker::Error {
                id: None,
                message: "icelens failed".into(),
            },
        ];
        for m in from {
            assert_eq!(FromWorker::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn the_wire_names_are_stable_and_strangers_are_refused() {
        assert_eq!(
            ToWorker::CheckModel { name: "x".into() }.encode(),
            r#"{"kind":"check-model","name":"x"}"#
        );
        let e = FromWorker::decode(r#"{"kind":"scene"}"#).unwrap_err();
        assert_eq!(e.side, "page");
        assert!(e.reason.contains("arrays"), "{e}");
        assert!(ToWorker::decode(r#"{"kind":"format-disk"}"#).is_err());
        assert!(ToWorker::decode("not json").is_err());
        assert_eq!(
            FromWorker::Error {
                id: Some(7),
                message: String::new()
            }
            .id(),
            Some(7)
        );
        assert_eq!(FromWorker::Ready.id(), None);
    }
}
