//! Running a model over a scene in the page: WebGPU when the browser has it, else the CPU
//! (in a Web Worker, `cpu_worker.rs`).
//!
//! Tiles are run one at a time and the page yields to the browser between them, so the
//! progress bar moves and the cancel button works while a scene is predicted.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use icelens_core::input::Window;
use icelens_core::metrics::{confusions, Scores};
use icelens_core::{Chart, Scene};
use icelens_model::burn::tensor::wgpu::WgpuBackend;
use icelens_model::burn::tensor::Device;
use icelens_model::cpu::Feature;
use icelens_model::gpu::GpuUNet;
use icelens_model::infer::run_tile_here;
use icelens_model::unet::Outputs;
use icelens_model::{predict_scene, Architecture, Forward, InferError, InferOptions, Prediction};

use crate::browser::cpu_worker;
pub use crate::model::{load_model, model_from_state, Model};

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
        let _ = g.forward(&Feature::zeros(24, 32, 32)).await;
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

/// Where the page runs a model: its WebGPU network, else the pool of CPU workers (or, where
/// workers are missing, the page's own thread).
struct PageNet<'a> {
    model: &'a Model,
    gpu: Option<Rc<GpuUNet>>,
    /// Workers in the CPU pool.
    workers: usize,
    /// The workers that ran a tile of this run.
    used: RefCell<HashSet<usize>>,
}

impl PageNet<'_> {
    fn in_workers(&self) -> bool {
        self.gpu.is_none() && cpu_worker::available()
    }
}

impl Forward for PageNet<'_> {
    fn architecture(&self) -> Architecture {
        self.model.net.arch.clone()
    }

    async fn run(&self, x: &Feature) -> Result<(Outputs, Vec<Feature>), InferError> {
        match &self.gpu {
            Some(g) => Ok(g.forward_with_attention(x).await?),
            None => Ok(self.model.net.forward_with_attention(x)),
        }
    }

    fn tiles_at_once(&self) -> usize {
        match self.in_workers() {
            true => self.workers,
            false => 1,
        }
    }

    async fn run_tile(
        &self,
        x: Feature,
        win: Window,
        core: Window,
    ) -> Result<Prediction, InferError> {
        if !self.in_workers() {
            return run_tile_here(self, x, win, core).await;
        }
        // Off the page's thread, on every core (see cpu_worker.rs).
        let (tile, worker) = cpu_worker::run_tile(self.model, x, win, core, self.workers).await?;
        self.used.borrow_mut().insert(worker);
        Ok(tile)
    }
}

/// Predicts a scene in the model crate's tile loop, with the threads that ran it (the CPU
/// workers that got a tile; 1 on WebGPU). `progress(done, total)` after each tile, then the
/// browser gets to paint and handle events; `cancelled()` is checked between tiles.
pub async fn predict(
    model: &Model,
    scene: &Scene,
    backend: Backend,
    progress: impl Fn(usize, usize),
    cancelled: impl Fn() -> bool,
) -> Result<(Prediction, usize), InferError> {
    let gpu =
        match backend {
            Backend::WebGpu => Some(gpu_net(model).ok_or_else(|| {
                InferError::Failed("WebGPU is not available in this browser".into())
            })?),
            Backend::Cpu => None,
        };
    // The progress bar shows before the first tile.
    yield_to_browser().await;
    let opts = page_options();
    let net = PageNet {
        model,
        gpu,
        workers: cpu_worker::threads(model, &opts),
        used: RefCell::new(HashSet::new()),
    };
    let pred = predict_scene(&net, scene, &opts, async |done, total| {
        progress(done, total);
        yield_to_browser().await;
        !cancelled()
    })
    .await?;
    let threads = net.used.borrow().len().max(1);
    Ok((pred, threads))
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
    /// Threads that ran it: CPU workers, or 1 (WebGPU, or the page's own thread).
    pub threads: usize,
}
