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
/// path and its CPU worker. After each tile `after_tile(done, total)` is awaited (the page
/// shows progress and lets the browser paint there); `false` cancels the run.
pub async fn predict_scene<N: Forward>(
    net: &N,
    scene: &Scene,
    opts: &InferOptions,
    mut after_tile: impl AsyncFnMut(usize, usize) -> bool,
) -> Result<Prediction, InferError> {
    let (lines, samples) = (scene.lines, scene.samples);
    let arch = net.architecture();
    let regression = arch.sic == SicHead::Regression;
    let mut pred = Prediction::empty(lines, samples, &arch)?;
    let tiles = plan_tiles(lines, samples, opts);
    let total = tiles.len();
    let mut input = Vec::new();
    for (i, (win, core)) in tiles.into_iter().enumerate() {
        let need = N_INPUT * win.pixels();
        input
            .try_reserve_exact(need.saturating_sub(input.len()))
            .map_err(|_| InferError::OutOfMemory {
                what: "a tile's input",
                error: OutOfMemory {
                    bytes: need.saturating_mul(4),
                },
            })?;
        input.resize(need, 0.0);
        scene.input_window_into(win, &mut input)?;
        let x = Feature {
            c: N_INPUT,
            h: win.height,
            w: win.width,
            data: std::mem::take(&mut input),
        };
        let (out, psis) = net.run(&x).await?;
        input = x.data;
        write_core(&mut pred, &out, win, core, regression);
        write_attention(&mut pred, &psis, win, core);
        if !after_tile(i + 1, total).await {
            return Err(InferError::Cancelled);
        }
    }
    Ok(pred)
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
    let samples = pred.samples;
    let span = core.row * samples..(core.row + core.height) * samples;
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
                let dst = core.col + c;
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
            let dst = (core.row + r) * pred.samples + core.col;
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
