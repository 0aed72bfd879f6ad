//! Whole-scene inference: whole when the scene fits the budget, else tiles with a halo.
//!
//! A real scene (~26 M pixels) cannot go through the network in one piece: the last decoder
//! level alone would need ~5 GB. Tiles see `halo` extra pixels on every side, and only their
//! core is kept; tile origins are multiples of the tile size, and cores and halos are
//! multiples of 2^levels, so the pooling grid of every tile lines up with the whole scene's.
//! Memory stays bounded by the tile size. With 384 px tiles and a 128 px halo, argmax
//! agreement with whole-scene runs is 99.8 % or better (spec §f).

use icelens_core::input::{Window, N_INPUT};
use icelens_core::{Chart, Scene};

use crate::arch::SicHead;
use crate::cpu::Feature;
use crate::unet::{Outputs, UNet};

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
}

impl Prediction {
    /// An all-zero prediction to be filled tile by tile with [`write_core`].
    pub fn empty(lines: usize, samples: usize, regression: bool) -> Self {
        let n = lines * samples;
        Prediction {
            lines,
            samples,
            classes: [vec![0; n], vec![0; n], vec![0; n]],
            confidence: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
            sic_value: regression.then(|| vec![0.0; n]),
        }
    }

    pub fn chart(&self, chart: Chart) -> &[u8] {
        &self.classes[chart as usize]
    }
}

/// The windows a scene is run in: (input window, core window).
pub fn plan_tiles(lines: usize, samples: usize, opts: &InferOptions) -> Vec<(Window, Window)> {
    if lines * samples <= opts.whole_scene_max_pixels {
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

/// Runs the network over a scene. `on_tile(done, total)` is called after each tile; returning
/// `false` cancels the run (the error is then "cancelled").
pub fn infer_scene(
    net: &UNet,
    scene: &Scene,
    opts: &InferOptions,
    on_tile: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Prediction, String> {
    let (lines, samples) = (scene.lines, scene.samples);
    let regression = net.arch.sic == SicHead::Regression;
    let mut pred = Prediction::empty(lines, samples, regression);
    let tiles = plan_tiles(lines, samples, opts);
    let total = tiles.len();
    let mut input = Vec::new();
    for (i, (win, core)) in tiles.into_iter().enumerate() {
        input.resize(N_INPUT * win.pixels(), 0.0);
        scene.input_window_into(win, &mut input)?;
        let x = Feature {
            c: N_INPUT,
            h: win.height,
            w: win.width,
            data: std::mem::take(&mut input),
        };
        let out = net.forward(&x);
        input = x.data;
        write_core(&mut pred, &out, win, core, regression);
        if !on_tile(i + 1, total) {
            return Err("cancelled".into());
        }
    }
    Ok(pred)
}

/// Copies the core of a tile's outputs into the scene-wide prediction: argmax class (first
/// maximum wins) and its softmax probability, or the rounded value of a regression SIC head.
pub fn write_core(
    pred: &mut Prediction,
    out: &Outputs,
    win: Window,
    core: Window,
    regression: bool,
) {
    for (k, chart) in Chart::ALL.iter().enumerate() {
        let f = out.get(*chart);
        let plane = f.h * f.w;
        for r in 0..core.height {
            let wr = core.row + r - win.row;
            for c in 0..core.width {
                let wc = core.col + c - win.col;
                let at = wr * f.w + wc;
                let dst = (core.row + r) * pred.samples + core.col + c;
                if k == 0 && regression {
                    let v = f.data[at];
                    pred.classes[0][dst] = v.round().clamp(0.0, 10.0) as u8;
                    pred.confidence[0][dst] = 1.0;
                    if let Some(s) = pred.sic_value.as_mut() {
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
                pred.classes[k][dst] = best as u8;
                pred.confidence[k][dst] = 1.0 / sum;
            }
        }
    }
}
