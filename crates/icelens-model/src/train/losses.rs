//! The challenge's losses: cross-entropy per chart over labelled pixels (255 ignored), or
//! squared error for a regression SIC head, summed over the charts.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use icelens_core::chart::CHART_FILL;

use crate::arch::SicHead;

/// Sum over labelled pixels (not 255, and a valid class of the head) of `-log softmax(logits)`
/// at the target class, and how many pixels that is. `logits` `[B, C, H, W]`, `target`
/// `B * H * W` class indices.
pub fn cross_entropy_sum(logits: Tensor<4>, target: &[u8]) -> (Tensor<1>, usize) {
    let [b, c, h, w] = logits.dims();
    assert_eq!(target.len(), b * h * w, "one target per pixel");
    let device = logits.device();
    let mut idx = Vec::with_capacity(target.len());
    let mut mask = Vec::with_capacity(target.len());
    let mut count = 0;
    for &t in target {
        let ok = t != CHART_FILL && (t as usize) < c;
        count += ok as usize;
        idx.push(if ok { t as i32 } else { 0 });
        mask.push(if ok { 1f32 } else { 0.0 });
    }
    let idx = Tensor::<4, Int>::from_data(TensorData::new(idx, [b, 1, h, w]), &device);
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &device);
    let picked = log_softmax(logits, 1).gather(1, idx);
    (picked.mul(mask).sum().neg(), count)
}

/// Sum over labelled pixels of `(prediction - class index)^2` for a one-channel regression
/// head, and how many pixels that is.
pub fn squared_error_sum(pred: Tensor<4>, target: &[u8]) -> (Tensor<1>, usize) {
    let [b, c, h, w] = pred.dims();
    assert_eq!(c, 1, "a regression head has one channel");
    assert_eq!(target.len(), b * h * w, "one target per pixel");
    let device = pred.device();
    let mut t = Vec::with_capacity(target.len());
    let mut mask = Vec::with_capacity(target.len());
    let mut count = 0;
    for &v in target {
        let ok = v != CHART_FILL;
        count += ok as usize;
        t.push(if ok { v as f32 } else { 0.0 });
        mask.push(if ok { 1f32 } else { 0.0 });
    }
    let t = Tensor::<4>::from_data(TensorData::new(t, [b, 1, h, w]), &device);
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &device);
    (pred.sub(t).mul(mask).square().sum(), count)
}

/// `CrossEntropyLoss(ignore_index=255)` with PyTorch's mean reduction: the mean over the
/// labelled pixels; `None` when there are none (PyTorch gives NaN).
pub fn masked_cross_entropy(logits: Tensor<4>, target: &[u8]) -> Option<Tensor<1>> {
    let (sum, n) = cross_entropy_sum(logits, target);
    (n > 0).then(|| sum.div_scalar(n as f64))
}

/// The fork's regression loss: `MSELoss` over the labelled pixels; `None` when there are none.
pub fn masked_mse(pred: Tensor<4>, target: &[u8]) -> Option<Tensor<1>> {
    let (sum, n) = squared_error_sum(pred, target);
    (n > 0).then(|| sum.div_scalar(n as f64))
}

/// Per-chart loss sums and labelled-pixel counts of a batch: cross-entropy for classification
/// heads, squared error for a regression SIC head.
pub fn chart_loss_sums(
    outputs: [Tensor<4>; 3],
    targets: &[Vec<u8>; 3],
    sic: SicHead,
) -> ([Tensor<1>; 3], [usize; 3]) {
    let [o_sic, o_sod, o_floe] = outputs;
    let (s0, n0) = match sic {
        SicHead::Classification => cross_entropy_sum(o_sic, &targets[0]),
        SicHead::Regression => squared_error_sum(o_sic, &targets[0]),
    };
    let (s1, n1) = cross_entropy_sum(o_sod, &targets[1]);
    let (s2, n2) = cross_entropy_sum(o_floe, &targets[2]);
    ([s0, s1, s2], [n0, n1, n2])
}
