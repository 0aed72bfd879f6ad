//! What can be drawn over the SAR, and the pixels of each layer.

use icelens_core::breakdown::{tile_errors, TileGrid};
use icelens_core::render::{
    attention_rgba, chart_rgba, confidence_rgba, error_ramp, error_rgba, versus_rgba,
};
use icelens_core::{Chart, Scene};
use icelens_model::Prediction;

/// Cell size of the error-per-tile layer and of the "worst tile" a condition jumps to.
pub const TILE: usize = 64;

/// What is drawn over the SAR.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layer {
    None,
    Chart(Chart),
    Prediction(Chart),
    Error(Chart),
    Confidence(Chart),
    /// The combined error per 64 x 64 px cell: where on the scene it goes wrong.
    Tiles,
    /// Where the model shown is right and the other model wrong, and the reverse.
    Versus(Chart),
    /// An attention U-Net's ψ of one expanding block (0 = the deepest): where it looks.
    Attention(usize),
}

impl Layer {
    pub fn key(self) -> String {
        match self {
            Layer::None => "none".into(),
            Layer::Tiles => "tiles".into(),
            Layer::Versus(c) => format!("vs-{c}"),
            Layer::Chart(c) => format!("chart-{c}"),
            Layer::Prediction(c) => format!("pred-{c}"),
            Layer::Error(c) => format!("error-{c}"),
            Layer::Confidence(c) => format!("conf-{c}"),
            Layer::Attention(k) => format!("attention-{k}"),
        }
    }
    pub fn from_key(k: &str) -> Layer {
        if k == "tiles" {
            return Layer::Tiles;
        }
        if let Some(block) = k.strip_prefix("attention-").and_then(|b| b.parse().ok()) {
            return Layer::Attention(block);
        }
        let Some((kind, chart)) = k.split_once('-') else {
            return Layer::None;
        };
        let Some(c) = Chart::from_name(chart) else {
            return Layer::None;
        };
        match kind {
            "chart" => Layer::Chart(c),
            "pred" => Layer::Prediction(c),
            "error" => Layer::Error(c),
            "conf" => Layer::Confidence(c),
            "vs" => Layer::Versus(c),
            _ => Layer::None,
        }
    }
    /// The layers to offer, with `attention_blocks` attention layers (the expanding blocks of
    /// the model shown; 0 for a plain U-Net).
    pub fn all(attention_blocks: usize) -> Vec<(Layer, String)> {
        let mut v = vec![(Layer::None, "None".to_string())];
        for c in Chart::ALL {
            v.push((Layer::Prediction(c), format!("Prediction: {c}")));
        }
        for c in Chart::ALL {
            v.push((Layer::Chart(c), format!("Ice chart: {c}")));
        }
        for c in Chart::ALL {
            v.push((Layer::Error(c), format!("Error: {c}")));
        }
        v.push((Layer::Tiles, "Error per 64 px tile".to_string()));
        for c in Chart::ALL {
            v.push((Layer::Versus(c), format!("Versus other model: {c}")));
        }
        for c in Chart::ALL {
            v.push((Layer::Confidence(c), format!("Confidence: {c}")));
        }
        for k in 0..attention_blocks {
            v.push((
                Layer::Attention(k),
                format!("Attention ψ: {}", block_name(k, attention_blocks)),
            ));
        }
        v
    }
}

/// "block k (1/s)": an expanding block and the resolution it sees, for menus and legends.
pub fn block_name(k: usize, blocks: usize) -> String {
    match blocks.saturating_sub(1 + k) {
        0 => format!("block {k} (full resolution)"),
        d => format!("block {k} (1/{})", 1u64 << d.min(63)),
    }
}

/// RGBA pixels of a layer on the scene grid; `None` when the layer has nothing to show for
/// this scene (no chart, or no prediction yet).
///
/// `other` is the other model's prediction of the scene, for [`Layer::Versus`].
pub fn layer_rgba(
    scene: &Scene,
    pred: Option<&Prediction>,
    other: Option<&Prediction>,
    layer: Layer,
) -> Option<Vec<u8>> {
    match layer {
        Layer::Versus(c) => {
            let (truth, b, a) = (scene.chart(c)?, pred?.chart(c), other?.chart(c));
            Some(versus_rgba(truth, a, b))
        }
        Layer::Chart(c) => scene.chart(c).map(|v| chart_rgba(v, c, 255)),
        Layer::Prediction(c) => pred.map(|p| {
            let mut rgba = chart_rgba(p.chart(c), c, 255);
            // Predictions exist everywhere; show them only where the SAR has data.
            for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
                if !scene.is_valid(i) {
                    px[3] = 0;
                }
            }
            rgba
        }),
        Layer::Error(c) => match (scene.chart(c), pred) {
            (Some(truth), Some(p)) => Some(error_rgba(c, truth, p.chart(c))),
            _ => None,
        },
        Layer::Confidence(c) => {
            pred.map(|p| confidence_rgba(&p.confidence[c as usize], &scene.sar[0]))
        }
        Layer::Tiles => {
            let p = pred?;
            let maps = [
                p.chart(Chart::SIC),
                p.chart(Chart::SOD),
                p.chart(Chart::FLOE),
            ];
            let grid = tile_errors(scene, maps, TILE).ok()?;
            Some(tile_rgba(&grid))
        }
        Layer::Attention(k) => Some(attention_rgba(pred?.attention.get(k)?, &scene.sar[0])),
        Layer::None => None,
    }
}

/// Each cell in the colour of its error (green right … red wrong); cells without labels clear.
fn tile_rgba(grid: &TileGrid) -> Vec<u8> {
    let mut rgba = vec![0u8; grid.lines * grid.samples * 4];
    for line in 0..grid.lines {
        for sample in 0..grid.samples {
            let e = grid.error_at(line / grid.cell, sample / grid.cell);
            if e.is_nan() {
                continue;
            }
            let i = (line * grid.samples + sample) * 4;
            rgba[i..i + 4].copy_from_slice(&error_ramp(e));
        }
    }
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_key_round_trips_as_stories_and_links_store_it() {
        let all = Layer::all(6);
        assert_eq!(
            all.iter()
                .filter(|(l, _)| matches!(l, Layer::Attention(_)))
                .count(),
            6
        );
        for (layer, _) in all {
            assert_eq!(Layer::from_key(&layer.key()), layer, "{}", layer.key());
        }
        assert_eq!(Layer::from_key("attention-"), Layer::None);
        assert_eq!(Layer::from_key("attention-x"), Layer::None);
        assert!(Layer::all(0)
            .iter()
            .all(|(l, _)| !matches!(l, Layer::Attention(_))));
    }

    #[test]
    fn blocks_are_named_by_the_resolution_they_see() {
        assert_eq!(block_name(0, 4), "block 0 (1/8)");
        assert_eq!(block_name(2, 4), "block 2 (1/2)");
        assert_eq!(block_name(3, 4), "block 3 (full resolution)");
    }
}
