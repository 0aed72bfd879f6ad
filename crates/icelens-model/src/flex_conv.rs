//! The U-Net's 3x3 convolutions when training on burn's CPU backend, forward and backward on
//! icelens' own im2col + GEMM kernels ([`crate::cpu`]).
//!
//! flex differentiates a convolution with burn's generic formulas: the weight gradient is
//! another convolution whose kernel is the whole `H x W` output gradient (a GEMM three
//! outputs wide), the input gradient a transposed convolution with a scalar col2im pass. For
//! this U-Net's narrow layers (16 to 64 channels) that was about 70 % of a training step.
//! Here the input gradient is the forward kernel run on the output gradient with the flipped,
//! transposed weights, and the weight gradient one GEMM per band of rows; images are spread
//! over the cores. Every other device (WebGPU, wgpu), and tensors outside autodiff, keep
//! burn's `conv2d`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::backend::{BackendTypes, TensorMetadata};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor, TensorData};

use crate::cpu::{conv3x3, conv3x3_transposed_weight, conv3x3_weight_grad, Feature};
use crate::par;

/// The autodiff backend a CPU training step runs on (the dispatch device `Device::flex()`
/// with autodiff and no gradient checkpointing).
type Ad = Autodiff<Flex>;

/// A 3x3 convolution, stride 1, zero padding 1, no bias (`x` `[B, Cin, H, W]`, `weight`
/// `[Cout, Cin, 3, 3]`): icelens' kernels under burn's CPU autodiff, burn's `conv2d`
/// everywhere else.
pub fn conv3x3_same(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    if let (Ok(xp), Ok(wp)) = (
        x.clone().try_into_primitive::<Ad>(),
        weight.clone().try_into_primitive::<Ad>(),
    ) {
        if xp.primitive().dtype() == DType::F32 && wp.primitive().dtype() == DType::F32 {
            return Tensor::from_primitive::<Ad>(tracked(xp, wp));
        }
    }
    conv2d(x, weight, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
}

type AdTensor = <Ad as BackendTypes>::FloatTensorPrimitive;

fn tracked(x: AdTensor, w: AdTensor) -> AdTensor {
    match Conv3x3Backward
        .prepare::<NoCheckpointing>([x.node(), w.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let xs = prep.checkpoint(&x);
            let ws = prep.checkpoint(&w);
            let out = forward(x.primitive(), w.primitive());
            prep.finish((xs, ws), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive(), w.primitive())),
    }
}

#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 2> for Conv3x3Backward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (xs, ws) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(xs);
        let w: FlexTensor = checkpointer.retrieve_node_output(ws);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, input_grad(&grad, &w));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, weight_grad(&x, &grad, &w));
        }
    }
}

/// A tensor's elements in row-major order, copied only when its layout is not already that.
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("a contiguous float32 tensor")
                .to_vec(),
        ),
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Image `i` of a `[B, C, H, W]` batch as a feature map.
fn image(data: &[f32], i: usize, [_, c, h, w]: [usize; 4]) -> Feature {
    let n = c * h * w;
    Feature {
        c,
        h,
        w,
        data: data[i * n..(i + 1) * n].to_vec(),
    }
}

/// Runs `conv` on every image of `x` (images spread over the cores) and stacks the results.
fn per_image(x: &FlexTensor, cout: usize, conv: impl Fn(&Feature) -> Feature + Sync) -> FlexTensor {
    let d = dims4(x);
    let [b, _, h, w] = d;
    let data = values(x);
    let outs = par::map((0..b).collect(), |i| conv(&image(&data, i, d)).data);
    let mut out = Vec::with_capacity(b * cout * h * w);
    for o in outs {
        out.extend_from_slice(&o);
    }
    FlexTensor::from_data(TensorData::new(out, [b, cout, h, w]))
}

fn forward(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let [cout, ..] = dims4(w);
    let weight = values(w);
    per_image(x, cout, |img| conv3x3(img, cout, &weight))
}

/// dL/dx: the output gradient convolved with the flipped, transposed kernel.
fn input_grad(grad: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let [cout, cin, ..] = dims4(w);
    let flipped = conv3x3_transposed_weight(&values(w), cin, cout);
    per_image(grad, cin, |img| conv3x3(img, cin, &flipped))
}

/// dL/dw: per image, one GEMM per band of rows; the images' sums added up.
fn weight_grad(x: &FlexTensor, grad: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let wd = dims4(w);
    let [cout, cin, ..] = wd;
    let xd = dims4(x);
    let gd = dims4(grad);
    let (xs, gs) = (values(x), values(grad));
    let b = xd[0];
    let parallel_inside = b < crate::cpu::threads();
    let parts = par::map((0..b).collect(), |i| {
        let mut dw = vec![0f32; cout * cin * 9];
        conv3x3_weight_grad(
            &image(&xs, i, xd),
            &image(&gs, i, gd),
            &mut dw,
            parallel_inside,
        );
        dw
    });
    let mut dw = vec![0f32; cout * cin * 9];
    for p in parts {
        dw.iter_mut().zip(p).for_each(|(a, v)| *a += v);
    }
    FlexTensor::from_data(TensorData::new(dw, wd))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn values_of(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("float32 values")
    }

    /// Output, input gradient and weight gradient of the kernels here against burn's own
    /// `conv2d` on the same autodiff CPU device, for odd sizes (the padding's edges), more
    /// channels out than in and the other way round, and an image of several bands of rows
    /// (16 x 9 x 64 x 128 taps > the 2^20 of one band).
    #[test]
    fn the_kernels_differentiate_like_burns_conv2d() {
        let device = Device::flex().autodiff();
        for (b, cin, cout, h, w) in [
            (2, 3, 5, 7, 9),
            (3, 6, 2, 1, 4),
            (1, 4, 4, 16, 3),
            (2, 16, 3, 128, 64),
        ] {
            let x = Tensor::<4>::random([b, cin, h, w], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let wt =
                Tensor::<4>::random([cout, cin, 3, 3], Distribution::Normal(0.0, 0.5), &device)
                    .require_grad();
            // A loss that weighs every output differently, so that a gradient routed to the
            // wrong pixel or channel shows.
            let r = Tensor::<4>::random([b, cout, h, w], Distribution::Normal(0.0, 1.0), &device);

            let xp = x
                .clone()
                .try_into_primitive::<Ad>()
                .expect("an autodiff flex tensor");
            let wp = wt
                .clone()
                .try_into_primitive::<Ad>()
                .expect("an autodiff flex tensor");
            let ours = Tensor::<4>::from_primitive::<Ad>(tracked(xp, wp));
            let burns = conv2d(
                x.clone(),
                wt.clone(),
                None,
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            );
            let grads = |y: Tensor<4>| {
                let g = y.mul(r.clone()).sum().backward();
                (
                    values_of(x.grad(&g).expect("x has a gradient")),
                    values_of(wt.grad(&g).expect("w has a gradient")),
                )
            };
            let (yo, yb) = (values_of(ours.clone()), values_of(burns.clone()));
            let (go, gb) = (grads(ours), grads(burns));
            for (what, a, e) in [
                ("output", &yo, &yb),
                ("dx", &go.0, &gb.0),
                ("dw", &go.1, &gb.1),
            ] {
                assert_eq!(a.len(), e.len(), "{what}");
                let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (i, (p, q)) in a.iter().zip(e.iter()).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-5 * scale.max(1.0),
                        "{what}[{i}] of {b}x{cin}->{cout}x{h}x{w}: {p} vs burn's {q}"
                    );
                }
            }
        }
    }

    /// Without autodiff, and on tensors the kernels do not take, burn's `conv2d` runs.
    #[test]
    fn plain_tensors_keep_burns_conv2d() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([3, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        assert!(x.clone().try_into_primitive::<Ad>().is_err());
        let ours = values_of(conv3x3_same(x.clone(), w.clone()));
        let burns = values_of(conv2d(
            x,
            w,
            None,
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ));
        assert_eq!(ours, burns);
    }
}
