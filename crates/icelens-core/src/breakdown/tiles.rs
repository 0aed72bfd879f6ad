//! Where in a scene the errors are: a grid of cells with a combined error each.

use super::*;

/// Where in a scene the errors are: a grid of square cells with a combined error each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileGrid {
    /// Cell size in pixels (the last row and column may be smaller).
    pub cell: usize,
    /// Scene size.
    pub lines: usize,
    pub samples: usize,
    pub rows: usize,
    pub cols: usize,
    /// Row-major, 0 (all right) … 1; NaN where the cell has no labelled pixel. Per chart:
    /// SIC mean |reference − prediction| / 10 (predictions above 10 count as 10), SOD and
    /// FLOE the share of mismatches; combined with the challenge's weights 2/2/1 over the
    /// charts that have labelled pixels in the cell.
    pub error: Vec<f32>,
    /// Pixels labelled in at least one chart, per cell.
    pub pixels: Vec<u32>,
}

impl TileGrid {
    pub fn error_at(&self, row: usize, col: usize) -> f32 {
        self.error[row * self.cols + col]
    }

    /// Pixel ranges `(lines, samples)` of a cell.
    pub fn bounds(
        &self,
        row: usize,
        col: usize,
    ) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let l0 = row * self.cell;
        let s0 = col * self.cell;
        (
            l0..(l0 + self.cell).min(self.lines),
            s0..(s0 + self.cell).min(self.samples),
        )
    }
}

/// The error grid of a scene's predictions, cells of `cell` × `cell` pixels (0 counts as 1).
/// A scene without charts gives an all-NaN grid.
pub fn tile_errors(scene: &Scene, pred: [&[u8]; 3], cell: usize) -> Result<TileGrid, ScoreError> {
    check_pred(scene, &pred)?;
    let cell = cell.max(1);
    let (lines, samples) = (scene.lines, scene.samples);
    let rows = lines.div_ceil(cell);
    let cols = samples.div_ceil(cell);
    let cells = rows * cols;
    let mut grid = TileGrid {
        cell,
        lines,
        samples,
        rows,
        cols,
        error: vec![f32::NAN; cells],
        pixels: vec![0; cells],
    };
    let Some(charts) = scene.charts.as_ref() else {
        return Ok(grid);
    };
    // Per cell: SIC |t − p| sum, then (count, mismatches) per chart.
    let mut sic_abs = vec![0u64; cells];
    let mut count = vec![[0u32; 3]; cells];
    let mut wrong = vec![[0u32; 3]; cells];
    for line in 0..lines {
        let base = line * samples;
        let row = line / cell;
        for s in 0..samples {
            let i = base + s;
            if charts[0][i] == CHART_FILL
                && charts[1][i] == CHART_FILL
                && charts[2][i] == CHART_FILL
            {
                continue;
            }
            let k = row * cols + s / cell;
            let mut any = false;
            for c in 0..3 {
                let t = charts[c][i];
                if t == CHART_FILL {
                    continue;
                }
                any = true;
                let p = pred[c][i];
                count[k][c] += 1;
                wrong[k][c] += u32::from(t != p);
                if c == 0 {
                    sic_abs[k] += t.abs_diff(p.min(10)) as u64;
                }
            }
            grid.pixels[k] += u32::from(any);
        }
    }
    let weights = [
        Chart::SIC.score_weight(),
        Chart::SOD.score_weight(),
        Chart::FLOE.score_weight(),
    ];
    for k in 0..cells {
        let (mut sum, mut wsum) = (0.0f64, 0.0f64);
        for c in 0..3 {
            let n = count[k][c];
            if n == 0 {
                continue;
            }
            let e = if c == 0 {
                sic_abs[k] as f64 / (10.0 * n as f64)
            } else {
                wrong[k][c] as f64 / n as f64
            };
            sum += weights[c] * e;
            wsum += weights[c];
        }
        if wsum > 0.0 {
            grid.error[k] = (sum / wsum) as f32;
        }
    }
    Ok(grid)
}

/// The cell `(row, col)` with the highest error among cells with a labelled pixel and,
/// given a mask (`lines × samples`, e.g. from [`condition_mask`]), at least one masked
/// pixel; the first such cell in row-major order on ties. `None` if there is none or the
/// mask has the wrong size.
pub fn worst_tile(grid: &TileGrid, mask: Option<&[bool]>) -> Option<(usize, usize)> {
    let touched: Option<Vec<bool>> = match mask {
        None => None,
        Some(m) if m.len() != grid.lines * grid.samples => return None,
        Some(m) => {
            let mut t = vec![false; grid.rows * grid.cols];
            for (line, row_mask) in m.chunks_exact(grid.samples.max(1)).enumerate() {
                let r = line / grid.cell;
                for (s, on) in row_mask.iter().enumerate() {
                    if *on {
                        t[r * grid.cols + s / grid.cell] = true;
                    }
                }
            }
            Some(t)
        }
    };
    let mut best: Option<(usize, f32)> = None;
    for (k, e) in grid.error.iter().enumerate() {
        if e.is_nan() || touched.as_ref().is_some_and(|t| !t[k]) {
            continue;
        }
        if best.is_none_or(|(_, b)| *e > b) {
            best = Some((k, *e));
        }
    }
    best.map(|(k, _)| (k / grid.cols, k % grid.cols))
}
