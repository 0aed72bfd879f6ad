//! The part of icelens that knows about sea ice and files, and nothing about screens.
//!
//! Everything here runs natively (CLI, tests, benchmarks) and in wasm32 (the web app) from
//! byte slices: the browser has no filesystem, so no function takes a path.
//!
//! - [`read_scene`] turns the bytes of an AI4Arctic "ready-to-train" netCDF file (netCDF-4/HDF5
//!   or netCDF-3) into a validated [`Scene`].
//! - [`Scene::input_window`] builds the 24-channel model input for any window, exactly as the
//!   challenge's loaders do for the whole scene.
//! - [`Chart`] holds the class tables and colours of SIC, SOD and FLOE.
//! - [`synth`] writes realistic synthetic scenes for demos, tests and benchmarks.

pub mod breakdown;
pub mod channels;
pub mod chart;
pub mod checkpoint;
pub mod dataset;
pub mod error;
pub mod input;
pub mod link;
pub mod memory;
pub mod messages;
pub mod meta;
pub mod metrics;
pub mod nc3;
pub mod npy;
pub mod plots;
pub mod read;
pub mod render;
pub mod scene;
pub mod shard;
pub mod stats;
pub mod story;
pub mod synth;
pub mod transfer;
pub mod upload;

pub use chart::Chart;
pub use error::FileError;
pub use input::Window;
pub use meta::SceneMeta;
pub use read::{read_scene, ReadLimits, SceneFile, SmallParts, BIG_ARRAYS};
pub use scene::{Container, Scene};
