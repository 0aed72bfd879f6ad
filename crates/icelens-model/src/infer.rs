//! Whole-scene inference: whole when the scene fits the memory budget, else tiles with a halo.
//!
//! The challenge runs one forward pass over the whole scene (spec §f), and tiles change the
//! answer: bilinear upsampling with `align_corners=True` depends on the size of the map it
//! works on, so a tiled run disagrees with the whole-scene one on about 1 % of a real scene's
//! pixels. A whole real scene (~26 M pixels) needs about 10 GB with the plain U-Net
//! ([`forward_peak_bytes`]), which a workstation has and a browser tab does not; so natively
//! a scene runs whole when it fits the budget ([`InferOptions::within_memory`]) and in the
//! largest tiles that fit otherwise. Tiles see `halo` extra pixels on every side, and only
//! their core is kept; tile origins are multiples of the tile size, and cores and halos are
//! multiples of 2^levels, so the pooling grid of every tile lines up with the whole scene's.
//! With 384 px tiles and a 128 px halo, argmax agreement with whole-scene runs is 99.8 % or
//! better on the fixtures (spec §f).

use icelens_core::input::{Window, N_INPUT};
use icelens_core::memory::{try_zeros, OutOfMemory};
use icelens_core::upload::UploadScene;
use icelens_core::{Chart, Scene};

use crate::arch::{Architecture, Kind, SicHead};
use crate::cpu::Feature;
use crate::error::ModelError;
use crate::unet::{forward_peak_bytes, Outputs, UNet};

#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    /// Core size of a tile (a multiple of 2^levels is best).
    pub tile: usize,
    /// Context added on every side of a tile.
    pub halo: usize,
    /// Scenes up to this many pixels run in one piece, like the challenge's own inference.
    pub whole_scene_max_pixels: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        Self {
            tile: 384,
            halo: 128,
            whole_scene_max_pixels: 1024 * 1024,
        }
    }
}

impl InferOptions {
    /// The plan for an `lines x samples` scene whose run may hold `budget` bytes (the network's
    /// maps and the prediction; the scene is already loaded): the whole scene in one piece, as
    /// the challenge runs it, when it fits; else the largest square tiles that fit, never
    /// smaller than the default.
    pub fn within_memory(arch: &Architecture, lines: usize, samples: usize, budget: u64) -> Self {
        let defaults = Self::default();
        let budget = u128::from(budget);
        let prediction = Prediction::bytes(lines, samples, arch);
        let fits = |h: usize, w: usize| forward_peak_bytes(arch, h, w) + prediction <= budget;
        if fits(lines, samples) {
            return Self {
                whole_scene_max_pixels: lines.saturating_mul(samples),
                ..defaults
            };
        }
        // Cores stay multiples of 2^levels (and of 64), so tiles pool like the whole scene.
        let step = (1usize << arch.levels().min(20)).max(64);
        let mut tile = defaults.tile;
        while tile < lines.max(samples)
            && fits(
                tile + step + 2 * defaults.halo,
                tile + step + 2 * defaults.halo,
            )
        {
            tile += step;
        }
        Self {
            tile,
            whole_scene_max_pixels: 0,
            ..defaults
        }
    }

    /// How many tile workers (threads of their own, each with its own copy of the network
    /// and its own maps) to run side by side: one per thread the machine offers, as many as
    /// `memory` bytes hold, at least one. A worker needs the forward pass of a whole window
    /// (tile and halo), the window's input and its core's prediction, and the weights.
    pub fn tile_workers(&self, arch: &Architecture, threads: usize, memory: u64) -> usize {
        let side = self.tile.saturating_add(2 * self.halo);
        let per_worker = forward_peak_bytes(arch, side, side)
            + (N_INPUT as u128 * 4) * (side as u128 * side as u128)
            + Prediction::bytes(self.tile, self.tile, arch)
            + 4 * arch.parameter_count() as u128;
        let fit = u128::from(memory) / per_worker.max(1);
        (fit.min(threads as u128) as usize).max(1)
    }

    /// Whether a scene of this size runs in one piece.
    pub fn runs_whole(&self, lines: usize, samples: usize) -> bool {
        lines.saturating_mul(samples) <= self.whole_scene_max_pixels
    }
}

/// Per-chart results on the scene grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub lines: usize,
    pub samples: usize,
    /// Argmax class index per chart (first maximum wins, like `torch.argmax`); the last
    /// ("mask") output can win too and is then an invalid class.
    pub classes: [Vec<u8>; 3],
    /// Softmax probability of the winning class (1.0 for a regression SIC head).
    pub confidence: [Vec<f32>; 3],
    /// The continuous SIC class value of a regression head.
    pub sic_value: Option<Vec<f32>>,
    /// An attention U-Net's coefficients ψ per expanding block (deepest first), brought to the
    /// scene grid and stored as round(255 ψ): a real scene's four maps in float32 would take
    /// 400 MB of a page's memory, and 1/255 is finer than any colour ramp shows. Empty for a
    /// plain U-Net.
    pub attention: Vec<Vec<u8>>,
}

impl Prediction {
    /// The scene's entry of the challenge's upload package (what `icelens predict` and the
    /// page's "upload package" write).
    pub fn upload_scene<'a>(&'a self, scene: &'a Scene) -> UploadScene<'a> {
        UploadScene {
            scene: &scene.meta.scene,
            lines: scene.lines,
            samples: scene.samples,
            charts: [
                self.chart(Chart::SIC),
                self.chart(Chart::SOD),
                self.chart(Chart::FLOE),
            ],
        }
    }

    /// An all-zero prediction of `arch`'s network, to be filled tile by tile with
    /// [`write_core`] (and [`write_attention`] for an attention U-Net). Refused, not aborted,
    /// when memory runs out: in a browser that would end the page.
    pub fn empty(lines: usize, samples: usize, arch: &Architecture) -> Result<Self, InferError> {
        let n = lines.checked_mul(samples).ok_or_else(|| {
            InferError::Failed(format!("a {lines} x {samples} scene is too large"))
        })?;
        let blocks = match arch.kind {
            Kind::Plain => 0,
            Kind::Attention => arch.levels(),
        };
        let oom = |e: OutOfMemory| InferError::OutOfMemory {
            what: "the prediction",
            error: e,
        };
        let bytes = || try_zeros::<u8>(n).map_err(oom);
        let floats = || try_zeros::<f32>(n).map_err(oom);
        Ok(Prediction {
            lines,
            samples,
            classes: [bytes()?, bytes()?, bytes()?],
            confidence: [floats()?, floats()?, floats()?],
            sic_value: match arch.sic {
                SicHead::Regression => Some(floats()?),
                SicHead::Classification => None,
            },
            attention: (0..blocks).map(|_| bytes()).collect::<Result<_, _>>()?,
        })
    }

    /// What [`Prediction::empty`] allocates, in bytes.
    pub fn bytes(lines: usize, samples: usize, arch: &Architecture) -> u128 {
        let per_pixel = 3 * (1 + 4)
            + match arch.sic {
                SicHead::Regression => 4,
                SicHead::Classification => 0,
            }
            + match arch.kind {
                Kind::Plain => 0,
                Kind::Attention => arch.levels(),
            };
        lines as u128 * samples as u128 * per_pixel as u128
    }

    /// ψ of expanding block `block` at a scene pixel, 0 … 1.
    pub fn attention_at(&self, block: usize, pixel: usize) -> Option<f32> {
        Some(f32::from(*self.attention.get(block)?.get(pixel)?) / 255.0)
    }

    pub fn chart(&self, chart: Chart) -> &[u8] {
        &self.classes[chart as usize]
    }

    /// Puts a tile's prediction (of `core`'s size, as [`tile_prediction`] makes it) in place.
    /// Its parts must match this prediction's (same network); a tile that does not fit the
    /// scene at `core` is the caller's error and panics.
    pub fn paste(&mut self, tile: &Prediction, core: Window) {
        assert!(
            (tile.lines, tile.samples) == (core.height, core.width)
                && core.row + core.height <= self.lines
                && core.col + core.width <= self.samples,
            "a {} x {} tile does not fit {core:?} of a {} x {} scene",
            tile.lines,
            tile.samples,
            self.lines,
            self.samples
        );
        fn rows<T: Copy>(dst: &mut [T], src: &[T], samples: usize, core: Window) {
            for (r, row) in src.chunks_exact(core.width).enumerate() {
                let at = (core.row + r) * samples + core.col;
                dst[at..at + core.width].copy_from_slice(row);
            }
        }
        let samples = self.samples;
        for (d, s) in self.classes.iter_mut().zip(&tile.classes) {
            rows(d, s, samples, core);
        }
        for (d, s) in self.confidence.iter_mut().zip(&tile.confidence) {
            rows(d, s, samples, core);
        }
        if let (Some(d), Some(s)) = (self.sic_value.as_mut(), tile.sic_value.as_ref()) {
            rows(d, s, samples, core);
        }
        for (d, s) in self.attention.iter_mut().zip(&tile.attention) {
            rows(d, s, samples, core);
        }
    }
}

/// The windows a scene is run in: (input window, core window).
pub fn plan_tiles(lines: usize, samples: usize, opts: &InferOptions) -> Vec<(Window, Window)> {
    if opts.runs_whole(lines, samples) {
        let w = Window::new(0, 0, lines, samples);
        return vec![(w, w)];
    }
    let tile = opts.tile.max(1);
    let mut out = Vec::new();
    for r in (0..lines).step_by(tile) {
        for c in (0..samples).step_by(tile) {
            let core = Window::new(r, c, tile.min(lines - r), tile.min(samples - c));
            let r0 = r.saturating_sub(opts.halo);
            let c0 = c.saturating_sub(opts.halo);
            let r1 = (r + core.height + opts.halo).min(lines);
            let c1 = (c + core.width + opts.halo).min(samples);
            out.push((Window::new(r0, c0, r1 - r0, c1 - c0), core));
        }
    }
    out
}

/// Why a run over a scene stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferError {
    /// Asked to stop between tiles.
    Cancelled,
    /// The input or the page's worker failed.
    Failed(String),
    /// The network or its backend failed.
    Model(ModelError),
    /// A large buffer could not be had (in a browser: the tab gives the page no more).
    OutOfMemory {
        what: &'static str,
        error: OutOfMemory,
    },
}

impl std::fmt::Display for InferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InferError::Cancelled => f.write_str("cancelled"),
            InferError::Failed(e) => f.write_str(e),
            InferError::Model(e) => e.fmt(f),
            InferError::OutOfMemory { what, error } => write!(f, "{what} {error}"),
        }
    }
}

impl std::error::Error for InferError {}

impl From<String> for InferError {
    fn from(e: String) -> Self {
        InferError::Failed(e)
    }
}

impl From<icelens_core::input::WindowError> for InferError {
    fn from(e: icelens_core::input::WindowError) -> Self {
        InferError::Model(e.into())
    }
}

impl From<ModelError> for InferError {
    fn from(e: ModelError) -> Self {
        InferError::Model(e)
    }
}

/// What runs the network on one window of the 24-channel input: the exact CPU path
/// ([`UNet`]), burn on wgpu ([`crate::gpu::GpuUNet`]), or the page's CPU worker. Gives the
/// heads and, for an attention U-Net, ψ of every expanding block (deepest first).
// Async for the browser, where reading a GPU buffer or a worker's answer cannot block; the
// loop runs on one thread, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Forward {
    fn architecture(&self) -> Architecture;
    async fn run(&self, x: &Feature) -> Result<(Outputs, Vec<Feature>), InferError>;

    /// How many tiles may be under way at once: the page's pool of CPU workers runs one per
    /// worker; a network that computes on the caller's thread gains nothing from more than one.
    fn tiles_at_once(&self) -> usize {
        1
    }

    /// What the scene keeps of one tile: its core's classes, confidences (and ψ), from the
    /// input of `win`. The default runs [`Forward::run`] and reduces the heads here; the page's
    /// CPU workers do this themselves, so that only these bytes cross back to the page rather
    /// than every logit of the window.
    async fn run_tile(
        &self,
        x: Feature,
        win: Window,
        core: Window,
    ) -> Result<Prediction, InferError> {
        run_tile_here(self, x, win, core).await
    }
}

/// [`Forward::run_tile`] by [`Forward::run`] and the heads reduced on this thread: the
/// default, and what a network that only sometimes hands tiles elsewhere does otherwise.
pub async fn run_tile_here<N: Forward + ?Sized>(
    net: &N,
    x: Feature,
    win: Window,
    core: Window,
) -> Result<Prediction, InferError> {
    let (out, psis) = net.run(&x).await?;
    drop(x);
    tile_prediction(&net.architecture(), &out, &psis, win, core)
}

/// The core of a tile's outputs as a prediction of the core's size (see [`write_core`] and
/// [`write_attention`]); [`Prediction::paste`] puts it in place.
pub fn tile_prediction(
    arch: &Architecture,
    out: &Outputs,
    psis: &[Feature],
    win: Window,
    core: Window,
) -> Result<Prediction, InferError> {
    let mut pred = Prediction::empty(core.height, core.width, arch)?;
    let at = (core.row, core.col);
    write_core_at(
        &mut pred,
        at,
        out,
        win,
        core,
        arch.sic == SicHead::Regression,
    );
    write_attention_at(&mut pred, at, psis, win, core);
    Ok(pred)
}

impl Forward for UNet {
    fn architecture(&self) -> Architecture {
        self.arch.clone()
    }

    async fn run(&self, x: &Feature) -> Result<(Outputs, Vec<Feature>), InferError> {
        Ok(match self.arch.kind {
            Kind::Plain => (self.forward(x), Vec::new()),
            Kind::Attention => self.forward_with_attention(x),
        })
    }
}

/// Runs a network over a scene, whole or tile by tile ([`plan_tiles`]), and stitches the
/// tiles' cores into one prediction: the one tile loop of the command line, the page's WebGPU
/// path and its CPU workers. Up to [`Forward::tiles_at_once`] tiles are under way together,
/// and their cores are placed in the order of the plan. After each tile
/// `after_tile(done, total)` is awaited (the page shows progress and lets the browser paint
/// there); `false` cancels the run.
pub async fn predict_scene<N: Forward>(
    net: &N,
    scene: &Scene,
    opts: &InferOptions,
    mut after_tile: impl AsyncFnMut(usize, usize) -> bool,
) -> Result<Prediction, InferError> {
    use futures_util::stream::{FuturesOrdered, StreamExt};

    let (lines, samples) = (scene.lines, scene.samples);
    let tiles = plan_tiles(lines, samples, opts);
    let total = tiles.len();
    let whole = Window::new(0, 0, lines, samples);
    if let [(win, core)] = tiles[..] {
        if core == whole {
            // One piece: the tile's prediction is the scene's, with no second copy.
            let pred = net.run_tile(tile_input(scene, win)?, win, core).await?;
            return match after_tile(1, 1).await {
                true => Ok(pred),
                false => Err(InferError::Cancelled),
            };
        }
    }
    let mut pred = Prediction::empty(lines, samples, &net.architecture())?;
    let at_once = net.tiles_at_once().max(1);
    let mut plan = tiles.into_iter();
    let mut running = FuturesOrdered::new();
    let mut done = 0;
    loop {
        while running.len() < at_once {
            let Some((win, core)) = plan.next() else {
                break;
            };
            let x = tile_input(scene, win)?;
            running.push_back(async move { (core, net.run_tile(x, win, core).await) });
        }
        let Some((core, tile)) = running.next().await else {
            break;
        };
        pred.paste(&tile?, core);
        done += 1;
        if !after_tile(done, total).await {
            return Err(InferError::Cancelled);
        }
    }
    Ok(pred)
}

/// The 24-channel input of a window, refused rather than aborted when memory runs out.
fn tile_input(scene: &Scene, win: Window) -> Result<Feature, InferError> {
    let need = N_INPUT.saturating_mul(win.pixels());
    let mut data = try_zeros::<f32>(need).map_err(|error| InferError::OutOfMemory {
        what: "a tile's input",
        error,
    })?;
    scene.input_window_into(win, &mut data)?;
    Ok(Feature {
        c: N_INPUT,
        h: win.height,
        w: win.width,
        data,
    })
}

/// [`predict_scene`] with the exact CPU network, on this thread (its forward pass never
/// waits, so this works in wasm too). `on_tile(done, total)` after each tile; `false` cancels.
pub fn infer_scene(
    net: &UNet,
    scene: &Scene,
    opts: &InferOptions,
    on_tile: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Prediction, InferError> {
    burn::tensor::read_sync(predict_scene(net, scene, opts, async |done, total| {
        on_tile(done, total)
    }))
}

/// Copies the core of a tile's outputs into the scene-wide prediction: argmax class (first
/// maximum wins) and its softmax probability, or the rounded value of a regression SIC head.
/// Rows are shared out over the cores: on a whole scene this is half a billion exponentials.
pub fn write_core(
    pred: &mut Prediction,
    out: &Outputs,
    win: Window,
    core: Window,
    regression: bool,
) {
    write_core_at(pred, (0, 0), out, win, core, regression)
}

/// [`write_core`] into a prediction whose first pixel is scene pixel `at` (a tile's own).
fn write_core_at(
    pred: &mut Prediction,
    at: (usize, usize),
    out: &Outputs,
    win: Window,
    core: Window,
    regression: bool,
) {
    let samples = pred.samples;
    let (row0, col0) = (core.row - at.0, core.col - at.1);
    let span = row0 * samples..(row0 + core.height) * samples;
    let Prediction {
        classes,
        confidence,
        sic_value,
        ..
    } = pred;
    for (k, (chart, (classes, confidence))) in Chart::ALL
        .iter()
        .zip(classes.iter_mut().zip(confidence.iter_mut()))
        .enumerate()
    {
        let f = out.get(*chart);
        let plane = f.h * f.w;
        let value_rows: Vec<Option<&mut [f32]>> = match sic_value.as_mut() {
            Some(v) if k == 0 && regression => {
                v[span.clone()].chunks_mut(samples).map(Some).collect()
            }
            _ => (0..core.height).map(|_| None).collect(),
        };
        let rows: Vec<_> = classes[span.clone()]
            .chunks_mut(samples)
            .zip(confidence[span.clone()].chunks_mut(samples))
            .zip(value_rows)
            .enumerate()
            .collect();
        crate::par::for_each(rows, |(r, ((classes, confidence), mut value))| {
            let wr = core.row + r - win.row;
            for c in 0..core.width {
                let at = wr * f.w + core.col + c - win.col;
                let dst = col0 + c;
                if k == 0 && regression {
                    let v = f.data[at];
                    classes[dst] = v.round().clamp(0.0, 10.0) as u8;
                    confidence[dst] = 1.0;
                    if let Some(s) = value.as_mut() {
                        s[dst] = v;
                    }
                    continue;
                }
                let (mut best, mut best_v) = (0usize, f32::NEG_INFINITY);
                for ch in 0..f.c {
                    let v = f.data[ch * plane + at];
                    if v > best_v {
                        best = ch;
                        best_v = v;
                    }
                }
                let sum: f32 = (0..f.c)
                    .map(|ch| (f.data[ch * plane + at] - best_v).exp())
                    .sum();
                classes[dst] = best as u8;
                confidence[dst] = 1.0 / sum;
            }
        });
    }
}

/// Brings each block's ψ of a tile to the scene grid and copies the tile's core into the
/// prediction. Block k of an L-level network sees the input at 1 / 2^(L-1-k) (its skip's
/// resolution, the pooling having floored odd sizes), so a scene pixel's ψ is read bilinearly
/// at its centre's position on that grid (half-pixel centres, edges clamped).
pub fn write_attention(pred: &mut Prediction, psis: &[Feature], win: Window, core: Window) {
    write_attention_at(pred, (0, 0), psis, win, core)
}

/// [`write_attention`] into a prediction whose first pixel is scene pixel `at`.
fn write_attention_at(
    pred: &mut Prediction,
    at: (usize, usize),
    psis: &[Feature],
    win: Window,
    core: Window,
) {
    let levels = psis.len();
    for (k, (psi, map)) in psis.iter().zip(pred.attention.iter_mut()).enumerate() {
        if psi.h == 0 || psi.w == 0 {
            continue;
        }
        let scale = (1u64 << (levels - 1 - k)) as f32;
        let taps = |pos: usize, n: usize| {
            let src = ((pos as f32 + 0.5) / scale - 0.5).clamp(0.0, (n - 1) as f32);
            let i0 = src as usize;
            let i1 = (i0 + 1).min(n - 1);
            (i0, i1, src - i0 as f32)
        };
        let cols: Vec<_> = (0..core.width)
            .map(|c| taps(core.col + c - win.col, psi.w))
            .collect();
        for r in 0..core.height {
            let (r0, r1, fr) = taps(core.row + r - win.row, psi.h);
            let row = |i: usize| &psi.data[i * psi.w..(i + 1) * psi.w];
            let (a, b) = (row(r0), row(r1));
            let dst = (core.row - at.0 + r) * pred.samples + core.col - at.1;
            for (c, &(c0, c1, fc)) in cols.iter().enumerate() {
                let top = a[c0] + (a[c1] - a[c0]) * fc;
                let bottom = b[c0] + (b[c1] - b[c0]) * fc;
                let v = top + (bottom - top) * fr;
                map[dst + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_is_brought_to_the_scene_grid_bilinearly() {
        let arch = Architecture::fresh(&[2, 2], SicHead::Classification, Kind::Attention).unwrap();
        let mut pred = Prediction::empty(4, 6, &arch).unwrap();
        // Block 0 sees the tile at half resolution, block 1 at full resolution.
        let half = Feature {
            c: 1,
            h: 2,
            w: 3,
            data: vec![0.0, 1.0, 0.0, 1.0, 1.0, 1.0],
        };
        let full = Feature {
            c: 1,
            h: 4,
            w: 6,
            data: (0..24).map(|i| i as f32 / 23.0).collect(),
        };
        let win = Window::new(0, 0, 4, 6);
        write_attention(&mut pred, &[half, full], win, win);
        // Full resolution: the values themselves.
        let want: Vec<u8> = (0..24)
            .map(|i| (i as f32 / 23.0 * 255.0).round() as u8)
            .collect();
        assert_eq!(pred.attention[1], want);
        // Half resolution: pixel (0, 0) maps to (-0.25, -0.25), clamped to cell (0, 0); pixel
        // (0, 1) to (-0.25, 0.25), a quarter of the way to the 1.0 at (0, 1); pixel (1, 0) to
        // (0.25, -0.25), a quarter of the way down to the 1.0 at (1, 0).
        let at = |r: usize, c: usize| pred.attention_at(0, r * 6 + c).unwrap();
        assert_eq!(at(0, 0), 0.0);
        assert!((at(0, 1) - 0.25).abs() <= 0.5 / 255.0, "{}", at(0, 1));
        assert!((at(1, 0) - 0.25).abs() <= 0.5 / 255.0, "{}", at(1, 0));
        assert_eq!(at(3, 5), 1.0);
    }

    #[test]
    fn only_the_core_of_a_tile_is_written() {
        let arch = Architecture::fresh(&[2], SicHead::Classification, Kind::Attention).unwrap();
        let mut pred = Prediction::empty(2, 4, &arch).unwrap();
        let psi = Feature {
            c: 1,
            h: 2,
            w: 3,
            data: vec![1.0; 6],
        };
        // A window over columns 1..4 whose core is column 2 alone.
        write_attention(
            &mut pred,
            &[psi],
            Window::new(0, 1, 2, 3),
            Window::new(0, 2, 2, 1),
        );
        assert_eq!(pred.attention[0], vec![0, 0, 255, 0, 0, 0, 255, 0]);
        assert!(Prediction::empty(
            2,
            4,
            &Architecture::fresh(&[2], SicHead::Classification, Kind::Plain).unwrap()
        )
        .unwrap()
        .attention
        .is_empty());
    }

    #[test]
    fn tile_workers_follow_the_threads_within_memory() {
        let arch =
            Architecture::fresh(&[16, 32, 32, 32], SicHead::Classification, Kind::Plain).unwrap();
        let opts = InferOptions::default();
        let side = opts.tile + 2 * opts.halo;
        let one = (forward_peak_bytes(&arch, side, side)
            + 24 * 4 * (side * side) as u128
            + Prediction::bytes(opts.tile, opts.tile, &arch)
            + 4 * arch.parameter_count() as u128) as u64;
        assert_eq!(opts.tile_workers(&arch, 8, 100 * one), 8);
        assert_eq!(opts.tile_workers(&arch, 8, 3 * one), 3);
        assert_eq!(opts.tile_workers(&arch, 8, 3 * one - 1), 2);
        // Never none: one worker runs however little memory is said to be left.
        assert_eq!(opts.tile_workers(&arch, 8, 0), 1);
        assert_eq!(opts.tile_workers(&arch, 0, 100 * one), 1);
    }

    #[test]
    fn a_tile_prediction_pasted_equals_its_core_written_in_place() {
        let arch = Architecture::fresh(&[2], SicHead::Regression, Kind::Attention).unwrap();
        let (lines, samples) = (7, 9);
        let win = Window::new(1, 2, 5, 6);
        let core = Window::new(2, 4, 3, 2);
        let mut v = 0.37f32;
        let mut feature = |c: usize, h: usize, w: usize| Feature {
            c,
            h,
            w,
            data: (0..c * h * w)
                .map(|_| {
                    v = (v * 7.31 + 0.11).fract();
                    v * 10.0 - 2.0
                })
                .collect(),
        };
        let out = Outputs {
            sic: feature(1, win.height, win.width),
            sod: feature(6, win.height, win.width),
            floe: feature(7, win.height, win.width),
        };
        let psis = vec![feature(1, win.height, win.width)];
        let mut direct = Prediction::empty(lines, samples, &arch).unwrap();
        write_core(&mut direct, &out, win, core, true);
        write_attention(&mut direct, &psis, win, core);
        let tile = tile_prediction(&arch, &out, &psis, win, core).unwrap();
        assert_eq!((tile.lines, tile.samples), (core.height, core.width));
        let mut pasted = Prediction::empty(lines, samples, &arch).unwrap();
        pasted.paste(&tile, core);
        assert!(pasted == direct);
        // Something was written, and only inside the core.
        let at = |r: usize, c: usize| r * samples + c;
        assert!(pasted.confidence[1][at(2, 4)] > 0.0);
        assert_eq!(pasted.confidence[1][at(2, 3)], 0.0);
        assert_eq!(pasted.confidence[1][at(5, 4)], 0.0);
        assert!(pasted.sic_value.as_ref().unwrap()[at(4, 5)] != 0.0);
    }

    #[test]
    fn a_prediction_larger_than_memory_is_an_error_not_an_abort() {
        let arch = Architecture::fresh(&[2], SicHead::Classification, Kind::Plain).unwrap();
        // 2^30 x 2^30 pixels: no machine holds it; `vec![0; n]` would abort the process.
        match Prediction::empty(1 << 30, 1 << 30, &arch) {
            Err(InferError::OutOfMemory { what, error }) => {
                assert_eq!(what, "the prediction");
                assert_eq!(error.bytes, 1 << 60);
            }
            other => panic!("{:?}", other.map(|p| p.lines)),
        }
        // A product past usize is refused as such.
        assert!(matches!(
            Prediction::empty(usize::MAX, 2, &arch),
            Err(InferError::Failed(_))
        ));
    }
}
