//! Pictures of a scene as RGBA pixels: the SAR backdrop and chart layers.
//!
//! Kept here, not in the page, so the exact look (stretch, colours, transparency) is tested
//! natively and shared by the page and the CLI's PNGs.

use crate::chart::Chart;
use crate::scene::Scene;

/// Which SAR picture to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SarView {
    HH,
    HV,
    /// R = HH, G = HV, B = HH - HV contrast, each stretched: ice and water separate by colour.
    FalseColour,
}

impl SarView {
    pub const ALL: [SarView; 3] = [SarView::HH, SarView::HV, SarView::FalseColour];

    /// The view's key in the page's select, in links and in stories ([`crate::story::SAR_VIEWS`]).
    pub fn key(self) -> &'static str {
        match self {
            SarView::HH => "HH",
            SarView::HV => "HV",
            SarView::FalseColour => "FC",
        }
    }

    /// The big arrays ([`crate::read::BIG_ARRAYS`] order) the view is drawn from: HH alone
    /// (it also tells which pixels have data), or HH and HV.
    pub fn arrays(self) -> &'static [usize] {
        match self {
            SarView::HH => &[0],
            SarView::HV | SarView::FalseColour => &[0, 1],
        }
    }

    /// The view of a key; anything unknown is HH, the picture every scene has.
    pub fn from_key(key: &str) -> SarView {
        SarView::ALL
            .into_iter()
            .find(|v| v.key() == key)
            .unwrap_or(SarView::HH)
    }
}

/// The values at quantiles `lo` and `hi` (0..1) of a channel's valid pixels, like the
/// challenge notebooks' `np.quantile(x[valid], [0.025, 0.975])`. Valid = HH not 0.
///
/// numpy's default 'linear' quantile needs the values at two neighbouring ranks only. They
/// are found without copying the channel: one pass counts the values by the top 16 bits of
/// their order-preserving bit pattern, which tells in which of those 65 536 buckets each
/// wanted rank lies; a second pass gathers just those buckets, and a selection within them
/// gives the exact values. On a real scene's 26 M pixels this is a fraction of copying and
/// selecting over all of them (which took most of a second in wasm before the picture).
pub fn stretch_limits(values: &[f32], valid: &[f32], lo: f64, hi: f64) -> Option<(f32, f32)> {
    let kept = || {
        values
            .iter()
            .zip(valid)
            .filter(|(x, m)| **m != 0.0 && x.is_finite())
            .map(|(x, _)| *x)
    };
    let mut counts = vec![0usize; 1 << 16];
    let mut n = 0usize;
    for x in kept() {
        counts[bucket(x)] += 1;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let ranks = |p: f64| {
        let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
        let i = (pos.floor() as usize).min(n - 1);
        (i, (i + 1).min(n - 1), pos.fract())
    };
    let (lo_ranks, hi_ranks) = (ranks(lo), ranks(hi));
    let wanted = [lo_ranks.0, lo_ranks.1, hi_ranks.0, hi_ranks.1];
    // The bucket of each wanted rank, and the rank's place within it.
    let mut at = [(0usize, 0usize); 4];
    for (slot, rank) in at.iter_mut().zip(wanted) {
        let mut below = 0usize;
        for (b, c) in counts.iter().enumerate() {
            if rank < below + c {
                *slot = (b, rank - below);
                break;
            }
            below += c;
        }
    }
    let mut buckets: Vec<usize> = at.iter().map(|(b, _)| *b).collect();
    buckets.sort_unstable();
    buckets.dedup();
    let mut members: Vec<Vec<f32>> = buckets
        .iter()
        .map(|b| Vec::with_capacity(counts[*b]))
        .collect();
    for x in kept() {
        if let Ok(k) = buckets.binary_search(&bucket(x)) {
            members[k].push(x);
        }
    }
    let mut value = |(b, within): (usize, usize)| -> f64 {
        let k = buckets.binary_search(&b).unwrap_or(0);
        let (_, v, _) = members[k].select_nth_unstable_by(within, f32::total_cmp);
        *v as f64
    };
    let mut q = |(a, b): ((usize, usize), (usize, usize)), f: f64| {
        let (a, b) = (value(a), value(b));
        (a + (b - a) * f) as f32
    };
    let l = q((at[0], at[1]), lo_ranks.2);
    let h = q((at[2], at[3]), hi_ranks.2);
    Some((l, h))
}

/// The top 16 bits of a float's bit pattern made to sort as the floats do (negatives
/// reversed, below the positives).
fn bucket(x: f32) -> usize {
    let b = x.to_bits();
    let ordered = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
    (ordered >> 16) as usize
}

fn to_byte(x: f32, (lo, hi): (f32, f32)) -> u8 {
    let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.5 };
    (t.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// RGBA of the SAR, stretched at 2.5 % / 97.5 %; pixels without data are transparent.
pub fn sar_rgba(scene: &Scene, view: SarView) -> Vec<u8> {
    sar_rgba_of(&scene.sar[0], &scene.sar[1], view)
}

/// [`sar_rgba`] from the two channels it needs, HH and HV (equally long): what the page's
/// decoding worker draws as soon as it has them, before the rest of the scene is decoded.
pub fn sar_rgba_of(hh: &[f32], hv: &[f32], view: SarView) -> Vec<u8> {
    let n = hh.len().min(hv.len());
    let limits = |x: &[f32]| stretch_limits(x, hh, 0.025, 0.975).unwrap_or((-1.0, 1.0));
    let mut out = vec![0u8; n * 4];
    match view {
        SarView::HH | SarView::HV => {
            let ch = if view == SarView::HH { hh } else { hv };
            let lim = limits(ch);
            for i in 0..n {
                if hh[i] != 0.0 {
                    let g = to_byte(ch[i], lim);
                    out[i * 4..i * 4 + 4].copy_from_slice(&[g, g, g, 255]);
                }
            }
        }
        SarView::FalseColour => {
            let diff: Vec<f32> = hh.iter().zip(hv).map(|(a, b)| a - b).collect();
            let (lh, lv, ld) = (limits(hh), limits(hv), limits(&diff));
            for i in 0..n {
                if hh[i] != 0.0 {
                    out[i * 4..i * 4 + 4].copy_from_slice(&[
                        to_byte(hh[i], lh),
                        to_byte(hv[i], lv),
                        to_byte(diff[i], ld),
                        255,
                    ]);
                }
            }
        }
    }
    out
}

/// RGBA of a class map in the challenge colours; 255 and out-of-range values transparent.
pub fn chart_rgba(values: &[u8], chart: Chart, alpha: u8) -> Vec<u8> {
    let mut out = vec![0u8; values.len() * 4];
    for (px, v) in out.chunks_exact_mut(4).zip(values) {
        if let Some([r, g, b]) = chart.colour(*v) {
            px.copy_from_slice(&[r, g, b, alpha]);
        }
    }
    out
}

/// Where a prediction disagrees with the chart. SIC: the absolute difference in tens of
/// percent, from transparent (0) through yellow to red (100 %); SOD/FLOE: red where the class
/// differs, a faint green where it agrees. Unlabelled pixels (255) stay transparent.
pub fn error_rgba(chart: Chart, truth: &[u8], pred: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; truth.len() * 4];
    for ((px, t), p) in out.chunks_exact_mut(4).zip(truth).zip(pred) {
        if *t == crate::chart::CHART_FILL {
            continue;
        }
        let [gr, gg, gb] = palette::RIGHT;
        let rgba = if chart == Chart::SIC {
            let d = (*t as i32 - *p as i32).unsigned_abs().min(10) as f32 / 10.0;
            if d == 0.0 {
                [gr, gg, gb, 90]
            } else {
                // From the ramp's middle (yellow) to its end (red) as the difference grows.
                let [y, r] = [palette::ERROR_STOPS[1], palette::ERROR_STOPS[2]];
                let mix =
                    |k: usize| (f32::from(y[k]) + (f32::from(r[k]) - f32::from(y[k])) * d) as u8;
                [
                    mix(0),
                    (f32::from(y[1]) * (1.0 - d)) as u8,
                    mix(2),
                    (120.0 + 135.0 * d) as u8,
                ]
            }
        } else if t == p {
            [gr, gg, gb, 90]
        } else {
            let [r, g, b] = palette::WRONG;
            [r, g, b, 230]
        };
        px.copy_from_slice(&rgba);
    }
    out
}

/// Model confidence (softmax probability of the chosen class) as a dark-to-bright ramp:
/// purple where the model hesitates, yellow where it is sure.
pub fn confidence_rgba(confidence: &[f32], valid: &[f32]) -> Vec<u8> {
    const STOPS: [[u8; 3]; 5] = palette::CONFIDENCE_STOPS;
    let mut out = vec![0u8; confidence.len() * 4];
    for ((px, c), v) in out.chunks_exact_mut(4).zip(confidence).zip(valid) {
        if *v == 0.0 {
            continue;
        }
        let t = c.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
        let i = (t as usize).min(STOPS.len() - 2);
        let f = t - i as f32;
        let mix =
            |k: usize| (f32::from(STOPS[i][k]) * (1.0 - f) + f32::from(STOPS[i + 1][k]) * f) as u8;
        px.copy_from_slice(&[mix(0), mix(1), mix(2), 255]);
    }
    out
}

pub use palette::ATTENTION_STOPS;

/// The colours that are not classes (those are [`Chart::colours`]), defined once: the layers'
/// pixels here, the page's legends and ramps, and the legends of exported pictures all take
/// them from this module.
pub mod palette {
    /// Right: the error layers' agreement, the versus layer's "the model shown is right".
    pub const RIGHT: [u8; 3] = [40, 200, 120];
    /// A wrong class (SOD and FLOE error layers).
    pub const WRONG: [u8; 3] = [235, 40, 40];
    /// Versus layer: the other model right, the one shown wrong.
    pub const OTHER_RIGHT: [u8; 3] = [235, 60, 60];
    /// Versus layer: both models wrong.
    pub const BOTH_WRONG: [u8; 3] = [130, 130, 130];
    /// The pixels of the condition picked in "Where is it worst".
    pub const HIGHLIGHT: [u8; 3] = [255, 230, 0];
    /// Error ramp: right (0), half wrong (0.5), wrong (1); the SIC error layer and the error
    /// per tile.
    pub const ERROR_STOPS: [[u8; 3]; 3] = [RIGHT, [255, 230, 0], [255, 0, 0]];
    /// Confidence ramp, low to high: stops of matplotlib's `plasma`.
    pub const CONFIDENCE_STOPS: [[u8; 3]; 5] = [
        [13, 8, 135],
        [126, 3, 168],
        [204, 71, 120],
        [248, 149, 64],
        [240, 249, 33],
    ];
    /// Attention heat map, ψ 0 to 1: stops of matplotlib's `inferno`.
    pub const ATTENTION_STOPS: [[u8; 3]; 5] = [
        [0, 0, 4],
        [87, 16, 110],
        [188, 55, 84],
        [249, 142, 9],
        [252, 255, 164],
    ];

    /// `#rrggbb`.
    pub fn hex([r, g, b]: [u8; 3]) -> String {
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// A CSS left-to-right gradient through the stops, for legend ramps.
    pub fn gradient(stops: &[[u8; 3]]) -> String {
        let stops: Vec<String> = stops.iter().map(|c| hex(*c)).collect();
        format!("linear-gradient(90deg, {})", stops.join(", "))
    }
}

/// An attention U-Net's ψ (stored as round(255 ψ)) as a heat map, clear where the SAR has
/// no data.
pub fn attention_rgba(psi: &[u8], valid: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; psi.len() * 4];
    for ((px, p), v) in out.chunks_exact_mut(4).zip(psi).zip(valid) {
        if *v == 0.0 {
            continue;
        }
        let t = f32::from(*p) / 255.0 * (ATTENTION_STOPS.len() - 1) as f32;
        let i = (t as usize).min(ATTENTION_STOPS.len() - 2);
        let f = t - i as f32;
        let (a, b) = (ATTENTION_STOPS[i], ATTENTION_STOPS[i + 1]);
        let mix = |k: usize| (f32::from(a[k]) * (1.0 - f) + f32::from(b[k]) * f).round() as u8;
        px.copy_from_slice(&[mix(0), mix(1), mix(2), 255]);
    }
    out
}

/// CSS colour of a class, for legends.
pub fn css_colour(chart: Chart, class: u8) -> String {
    palette::hex(chart.colour(class).unwrap_or([0, 0, 0]))
}

/// Green where `b` (the model shown) is right and `a` wrong, red for the reverse, grey where
/// both are wrong; clear where both are right or there is no reference.
pub fn versus_rgba(truth: &[u8], a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut rgba = vec![0u8; truth.len() * 4];
    for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
        let t = truth[i];
        if t == crate::chart::CHART_FILL {
            continue;
        }
        let ([r, g, bl], alpha) = match (a[i] == t, b[i] == t) {
            (false, true) => (palette::RIGHT, 235),
            (true, false) => (palette::OTHER_RIGHT, 235),
            (false, false) => (palette::BOTH_WRONG, 110),
            (true, true) => continue,
        };
        px.copy_from_slice(&[r, g, bl, alpha]);
    }
    rgba
}

/// [`palette::ERROR_STOPS`] at `e` (0 … 1, clamped), opaque.
pub fn error_ramp(e: f32) -> [u8; 4] {
    let e = e.clamp(0.0, 1.0);
    let [g, y, r] = palette::ERROR_STOPS;
    let (a, b, t) = if e < 0.5 {
        (g, y, e * 2.0)
    } else {
        (y, r, (e - 0.5) * 2.0)
    };
    let mix = |k: usize| (f32::from(a[k]) + (f32::from(b[k]) - f32::from(a[k])) * t) as u8;
    [mix(0), mix(1), mix(2), 255]
}

/// A translucent highlight of the pixels of a condition, everything else dimmed.
pub fn highlight_rgba(mask: &[bool]) -> Vec<u8> {
    let [r, g, b] = palette::HIGHLIGHT;
    let mut rgba = vec![0u8; mask.len() * 4];
    for (px, &m) in rgba.chunks_exact_mut(4).zip(mask) {
        if m {
            px.copy_from_slice(&[r, g, b, 110]);
        } else {
            px.copy_from_slice(&[0, 0, 0, 150]);
        }
    }
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sar_view_keys_round_trip_and_are_the_ones_stories_accept() {
        for v in SarView::ALL {
            assert_eq!(SarView::from_key(v.key()), v);
        }
        let keys: Vec<&str> = SarView::ALL.iter().map(|v| v.key()).collect();
        assert_eq!(keys, crate::story::SAR_VIEWS);
        assert_eq!(SarView::from_key("VV"), SarView::HH);
    }

    #[test]
    fn attention_runs_from_the_first_stop_to_the_last_and_is_clear_without_sar() {
        let rgba = attention_rgba(&[0, 255, 128, 200], &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(&rgba[0..4], &[0, 0, 4, 255]);
        assert_eq!(&rgba[4..8], &[252, 255, 164, 255]);
        // 128/255 lies just past the middle stop.
        let mid = &rgba[8..12];
        assert!(mid[0] >= 188 && mid[0] < 200 && mid[3] == 255, "{mid:?}");
        assert_eq!(&rgba[12..16], &[0, 0, 0, 0]);
    }

    #[test]
    fn quantiles_follow_numpy_linear() {
        let v: Vec<f32> = (0..=100).map(|x| x as f32).collect();
        let valid = vec![1.0; v.len()];
        assert_eq!(stretch_limits(&v, &valid, 0.025, 0.975), Some((2.5, 97.5)));
        let none = vec![0.0; v.len()];
        assert_eq!(stretch_limits(&v, &none, 0.025, 0.975), None);
    }

    #[test]
    fn error_layer_marks_disagreement() {
        let e = error_rgba(Chart::SOD, &[1, 1, 255], &[1, 2, 3]);
        assert_eq!(e[3], 90);
        assert_eq!(&e[4..8], &[235, 40, 40, 230]);
        assert_eq!(e[11], 0);
        let s = error_rgba(Chart::SIC, &[10, 0], &[0, 5]);
        assert_eq!(&s[0..4], &[255, 0, 0, 255]);
        assert!(s[7] > 120 && s[7] < 255);
        let c = confidence_rgba(&[0.0, 1.0, 0.5], &[1.0, 1.0, 0.0]);
        assert_eq!(&c[0..4], &[13, 8, 135, 255]);
        assert_eq!(&c[4..8], &[240, 249, 33, 255]);
        assert_eq!(c[11], 0);
    }

    #[test]
    fn versus_ramp_and_highlight_take_the_palette() {
        let v = versus_rgba(&[1, 1, 1, 1, 255], &[2, 1, 2, 1, 0], &[1, 2, 2, 1, 0]);
        assert_eq!(&v[0..4], &[40, 200, 120, 235]);
        assert_eq!(&v[4..8], &[235, 60, 60, 235]);
        assert_eq!(&v[8..12], &[130, 130, 130, 110]);
        assert_eq!(&v[12..20], &[0u8; 8]);
        assert_eq!(error_ramp(0.0), [40, 200, 120, 255]);
        assert_eq!(error_ramp(0.5), [255, 230, 0, 255]);
        assert_eq!(error_ramp(2.0), [255, 0, 0, 255]);
        assert_eq!(error_ramp(0.25), [147, 215, 60, 255]);
        assert_eq!(
            highlight_rgba(&[true, false]),
            [255, 230, 0, 110, 0, 0, 0, 150]
        );
        assert_eq!(
            palette::gradient(&palette::ERROR_STOPS),
            "linear-gradient(90deg, #28c878, #ffe600, #ff0000)"
        );
        assert_eq!(palette::hex(palette::CONFIDENCE_STOPS[0]), "#0d0887");
    }

    #[test]
    fn chart_pixels_use_challenge_colours_and_hide_fill() {
        let rgba = chart_rgba(&[0, 10, 255, 11], Chart::SIC, 200);
        assert_eq!(&rgba[0..4], &[0x00, 0x00, 0x80, 200]);
        assert_eq!(&rgba[4..8], &[0x80, 0x00, 0x00, 200]);
        assert_eq!(&rgba[8..16], &[0u8; 8]);
        assert_eq!(css_colour(Chart::SOD, 2), "#29ffce");
    }
}
