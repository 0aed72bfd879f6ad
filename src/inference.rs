//! Running a model over a scene in the page: WebGPU when the browser has it, else the CPU
//! (in a Web Worker, `cpu_worker.rs`).
//!
//! Tiles are run one at a time and the page yields to the browser between them, so the
//! progress bar moves and the cancel button works while a scene is predicted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use icelens_core::checkpoint::{load_state_dict, StateDict};
use icelens_core::metrics::{confusions, Scores};
use icelens_core::{Chart, Scene};
use icelens_model::burn::tensor::wgpu::WgpuBackend;
use icelens_model::burn::tensor::Device;
use icelens_model::cpu::Feature;
use icelens_model::gpu::GpuUNet;
use icelens_model::infer::{plan_tiles, write_attention, write_core};
use icelens_model::{InferOptions, Kind, Prediction, SicHead, UNet};

use crate::cpu_worker;

/// Which arithmetic runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    WebGpu,
    Cpu,
}

impl Backend {
    pub fn key(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }
}

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

/// Recognises a model file by content: a torch.save zip, safetensors or burnpack.
pub fn is_model_file(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        || bytes.starts_with(b"NRUB")
        || (bytes.len() > 9 && bytes[8] == b'{' && !bytes.starts_with(b"CDF"))
}

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

thread_local! {
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
    static GPU_NETS: RefCell<HashMap<String, Rc<GpuUNet>>> = RefCell::new(HashMap::new());
}

/// Asks the browser for a WebGPU device; `false` when it has none.
pub async fn init_webgpu() -> bool {
    let has_gpu = web_sys::window()
        .map(|w| {
            !js_sys::Reflect::get(&w.navigator(), &"gpu".into())
                .map(|g| g.is_undefined())
                .unwrap_or(true)
        })
        .unwrap_or(false);
    if !has_gpu {
        return false;
    }
    match Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
    {
        Ok(device) => {
            DEVICE.with(|d| *d.borrow_mut() = Some(device));
            true
        }
        Err(e) => {
            web_sys::console::warn_1(&format!("WebGPU unavailable: {e:?}").into());
            false
        }
    }
}

/// The WebGPU device, once [`init_webgpu`] found one.
pub fn gpu_device() -> Option<Device> {
    DEVICE.with(|d| d.borrow().clone())
}

/// The model's network on the WebGPU device, built once per model. `None` without WebGPU, or
/// if the weights do not build there (they built on the CPU, so this is not expected; the CPU
/// path then runs instead).
fn gpu_net(model: &Model) -> Option<Rc<GpuUNet>> {
    let device = DEVICE.with(|d| d.borrow().clone())?;
    GPU_NETS.with(|nets| {
        let mut nets = nets.borrow_mut();
        if let Some(net) = nets.get(&model.name) {
            return Some(net.clone());
        }
        let net = Rc::new(GpuUNet::new(&model.state, &device).ok()?);
        nets.insert(model.name.clone(), net.clone());
        Some(net)
    })
}

/// Compiles the GPU shaders on a small input, so the first real run does not pay for it.
pub async fn warm_up(model: &Model) {
    if let Some(g) = gpu_net(model) {
        let _ = g.forward_async(&Feature::zeros(24, 32, 32)).await;
    }
}

/// Lets the browser paint and handle events.
pub async fn yield_to_browser() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Tile sizes for the page: smaller than natively, to keep WebGPU buffers and wasm memory low.
pub fn page_options() -> InferOptions {
    InferOptions {
        tile: 384,
        halo: 128,
        whole_scene_max_pixels: 640 * 640,
    }
}

/// Predicts a scene tile by tile. `progress(done, total)` after each tile; `cancelled()` is
/// checked between tiles.
pub async fn predict(
    model: &Model,
    scene: &Scene,
    backend: Backend,
    progress: impl Fn(usize, usize),
    cancelled: impl Fn() -> bool,
) -> Result<Prediction, String> {
    let regression = model.net.arch.sic == SicHead::Regression;
    let mut pred = Prediction::empty(scene.lines, scene.samples, &model.net.arch);
    let tiles = plan_tiles(scene.lines, scene.samples, &page_options());
    let gpu = match backend {
        Backend::WebGpu => Some(gpu_net(model).ok_or("WebGPU is not available in this browser")?),
        Backend::Cpu => None,
    };
    let total = tiles.len();
    progress(0, total);
    yield_to_browser().await;
    for (i, (win, core)) in tiles.into_iter().enumerate() {
        let x = Feature {
            c: 24,
            h: win.height,
            w: win.width,
            data: scene.input_window(win)?,
        };
        let (out, psis) = match &gpu {
            Some(g) => g.forward_with_attention_async(&x).await?,
            // Off the page's thread when it can be (see cpu_worker.rs).
            None if cpu_worker::available() => cpu_worker::forward(model, &x).await?,
            None => model.net.forward_with_attention(&x),
        };
        write_core(&mut pred, &out, win, core, regression);
        write_attention(&mut pred, &psis, win, core);
        progress(i + 1, total);
        yield_to_browser().await;
        if cancelled() {
            return Err("cancelled".into());
        }
    }
    Ok(pred)
}

/// The challenge's scores of a prediction against the scene's charts.
pub fn score(scene: &Scene, pred: &Prediction) -> Option<Scores> {
    let charts = scene.charts.as_ref()?;
    let c = confusions(
        charts,
        [
            pred.chart(Chart::SIC),
            pred.chart(Chart::SOD),
            pred.chart(Chart::FLOE),
        ],
    );
    Some(Scores::from_confusions(&c))
}

/// A finished run, kept per (scene, model, backend).
#[derive(Debug)]
pub struct Run {
    pub prediction: Prediction,
    pub scores: Option<Scores>,
    pub backend: Backend,
    pub seconds: f64,
}
