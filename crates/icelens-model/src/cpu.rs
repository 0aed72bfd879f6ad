//! The U-Net's building blocks on the CPU, float32, one image at a time (CHW layout).
//!
//! PyTorch semantics are followed to the letter (spec §d.1): zero padding, floor-mode max
//! pooling, bilinear ×2 upsampling with `align_corners=True` computed in float32 as PyTorch's
//! CPU kernel does, zero padding of the upsampled map at the bottom/right, and [deep, skip]
//! concatenation order.

/// A feature map: `c` channels of `h x w`, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Feature {
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    pub fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

/// A 3x3 convolution (no bias) followed by eval-mode BatchNorm, folded together:
/// `y = conv(x, w * scale) + shift` with `scale = gamma / sqrt(var + eps)` and
/// `shift = beta - mean * scale`. Weights are `[out, in * 9]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvBn {
    pub cin: usize,
    pub cout: usize,
    pub weight: Vec<f32>,
    pub shift: Vec<f32>,
}

pub const BN_EPS: f32 = 1e-5;

impl ConvBn {
    pub fn fold(
        cin: usize,
        cout: usize,
        weight: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
    ) -> Self {
        let k = cin * 9;
        let mut w = weight.to_vec();
        let mut shift = vec![0f32; cout];
        for o in 0..cout {
            let scale = gamma[o] / (var[o] + BN_EPS).sqrt();
            for v in &mut w[o * k..(o + 1) * k] {
                *v *= scale;
            }
            shift[o] = beta[o] - mean[o] * scale;
        }
        Self {
            cin,
            cout,
            weight: w,
            shift,
        }
    }

    /// Convolution, BatchNorm and ReLU.
    pub fn forward_relu(&self, x: &Feature) -> Feature {
        conv3x3_fused(x, self.cout, &self.weight, Some(&self.shift), true)
    }

    /// Convolution and BatchNorm, no activation (the attention gate's branches).
    pub fn forward(&self, x: &Feature) -> Feature {
        conv3x3_fused(x, self.cout, &self.weight, Some(&self.shift), false)
    }
}

/// Threads the convolution bands are spread over (1 in a browser worker: wasm32 without
/// shared memory has none).
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

/// `dst[m x n] = lhs[m x k] * rhs[k x n]`, all row-major; `dst = (first element, row
/// stride)`.
///
/// # Safety
/// `dst` must be valid for writes of `m` rows of `n` elements, a stride apart, and no other
/// thread may touch those elements meanwhile.
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (*mut f32, usize),
    lhs: &[f32],
    rhs: &[f32],
    parallel: bool,
) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n);
    #[cfg(not(target_arch = "wasm32"))]
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // One thread in a browser worker.
    #[cfg(target_arch = "wasm32")]
    let parallelism = {
        let _ = parallel;
        gemm::Parallelism::None
    };
    // SAFETY: lhs is m x k and rhs is k x n, densely packed (asserted); dst is the caller's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Elements of one band's im2col buffer (4 MB): small enough to stay in the cache between
/// being written and being multiplied, large enough for GEMM to run at full speed.
const BAND_ELEMENTS: usize = 1 << 20;

/// A feature map's data shared by the bands of one convolution, each of which writes only
/// its own rows of every output plane.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

impl SharedOut {
    /// Through a method, so that closures capture the whole (`Sync`) wrapper, not the field.
    fn ptr(&self) -> *mut f32 {
        self.0
    }
}
// SAFETY: bands write disjoint rows (see `conv3x3_fused`), so sharing the pointer is sound.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Runs `band(first_row, rows, scratch, parallel_inside)` over the bands of an `h`-row image:
/// natively on every thread when there are enough bands to share out, else one after another
/// with each band's GEMM itself parallel.
fn for_each_band(h: usize, rows: usize, band: impl Fn(usize, usize, &mut Vec<f32>, bool) + Sync) {
    let starts: Vec<usize> = (0..h).step_by(rows.max(1)).collect();
    #[cfg(not(target_arch = "wasm32"))]
    if threads() > 1 && starts.len() >= 2 * threads() {
        use rayon::prelude::*;
        starts
            .into_par_iter()
            .for_each_init(Vec::new, |col, r0| band(r0, rows.min(h - r0), col, false));
        return;
    }
    let mut col = Vec::new();
    for r0 in starts {
        band(r0, rows.min(h - r0), &mut col, true);
    }
}

/// 3x3 convolution, stride 1, zero padding 1, no bias: im2col over bands of rows + GEMM.
pub fn conv3x3(x: &Feature, cout: usize, weight: &[f32]) -> Feature {
    conv3x3_fused(x, cout, weight, None, false)
}

/// [`conv3x3`], then `+ shift[channel]` and a ReLU if asked, applied to each band while it is
/// still in the cache rather than in more passes over a scene-sized map. The bands run in
/// parallel: the im2col copy is a third of a convolution's time and would otherwise run on
/// one thread while GEMM waits.
pub fn conv3x3_fused(
    x: &Feature,
    cout: usize,
    weight: &[f32],
    shift: Option<&[f32]>,
    relu: bool,
) -> Feature {
    let (c, h, w) = (x.c, x.h, x.w);
    let k = c * 9;
    assert_eq!(weight.len(), cout * k);
    assert!(shift.is_none_or(|s| s.len() == cout));
    let mut out = Feature::zeros(cout, h, w);
    if h == 0 || w == 0 || cout == 0 {
        return out;
    }
    let plane = h * w;
    let rows = (BAND_ELEMENTS / (k * w)).clamp(1, h);
    let dst = SharedOut(out.data.as_mut_ptr());
    for_each_band(h, rows, |r0, rb, col, parallel| {
        let n = rb * w;
        col.resize(k * n, 0.0);
        im2col_band(x, r0, rb, &mut col[..k * n]);
        // SAFETY: `out` holds cout planes of h x w; this band writes rows r0 .. r0 + rb of
        // each, which no other band writes, and `out` outlives every band.
        unsafe {
            let first = dst.ptr().add(r0 * w);
            matmul(
                (cout, n, k),
                (first, plane),
                weight,
                &col[..k * n],
                parallel,
            );
            for o in 0..cout {
                let rows = std::slice::from_raw_parts_mut(first.add(o * plane), n);
                let s = shift.map_or(0.0, |s| s[o]);
                if relu {
                    rows.iter_mut().for_each(|v| *v = (*v + s).max(0.0));
                } else if s != 0.0 {
                    rows.iter_mut().for_each(|v| *v += s);
                }
            }
        }
    });
    out
}

/// The weight gradient of [`conv3x3`] for one image, added to `dw` (`[cout, cin * 9]`, the
/// weights' layout): `dw[o, (ci, ky, kx)] += sum over pixels of dy[o] * x[ci] shifted by
/// (ky - 1, kx - 1)`. One GEMM per band of rows against the band's im2col, the same bands as
/// the forward pass, so no image-sized buffer is made. `parallel`: let the GEMM use every
/// core (when the caller is not already spreading images over them).
pub fn conv3x3_weight_grad(x: &Feature, dy: &Feature, dw: &mut [f32], parallel: bool) {
    let (c, h, w) = (x.c, x.h, x.w);
    let k = c * 9;
    let cout = dy.c;
    assert_eq!((dy.h, dy.w), (h, w), "gradient and input of one size");
    assert_eq!(dw.len(), cout * k);
    let plane = h * w;
    if plane == 0 || cout == 0 || k == 0 {
        return;
    }
    let rows = (BAND_ELEMENTS / (k * w)).clamp(1, h);
    let mut col = Vec::new();
    for r0 in (0..h).step_by(rows) {
        let rb = rows.min(h - r0);
        let n = rb * w;
        col.resize(k * n, 0.0);
        im2col_band(x, r0, rb, &mut col[..k * n]);
        let lhs = &dy.data[r0 * w..];
        // The last element the GEMM reads of `lhs` is (cout - 1) * plane + n - 1.
        assert!(lhs.len() >= (cout - 1) * plane + n);
        #[cfg(not(target_arch = "wasm32"))]
        let parallelism = if parallel {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        #[cfg(target_arch = "wasm32")]
        let parallelism = {
            let _ = parallel;
            gemm::Parallelism::None
        };
        // SAFETY: dst is dw, cout x k row-major (asserted); lhs is dy's band, cout rows of n a
        // plane apart (asserted); rhs is the band's im2col read transposed, n x k with element
        // (j, q) at col[q * n + j], all within `col[..k * n]`.
        unsafe {
            gemm::gemm(
                cout,
                k,
                n,
                dw.as_mut_ptr(),
                1,
                k as isize,
                true,
                lhs.as_ptr(),
                1,
                plane as isize,
                col.as_ptr(),
                n as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// The weights that turn [`conv3x3`] into its input gradient: the input gradient of a 3x3
/// convolution with zero padding 1 is the convolution of the output gradient with the kernel
/// flipped in both directions and its input and output channels swapped.
/// `weight` `[cout, cin * 9]` becomes `[cin, cout * 9]`.
pub fn conv3x3_transposed_weight(weight: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    assert_eq!(weight.len(), cout * cin * 9);
    let mut t = vec![0f32; weight.len()];
    for o in 0..cout {
        for i in 0..cin {
            for tap in 0..9 {
                t[(i * cout + o) * 9 + (8 - tap)] = weight[(o * cin + i) * 9 + tap];
            }
        }
    }
    t
}

/// The im2col rows of output rows `r0 .. r0 + rb`: row `(ci, ky, kx)` holds input channel
/// `ci` shifted by `(ky - 1, kx - 1)`, zero outside the image.
fn im2col_band(x: &Feature, r0: usize, rb: usize, col: &mut [f32]) {
    let (h, w) = (x.h, x.w);
    let n = rb * w;
    for ci in 0..x.c {
        let src = x.plane(ci);
        for ky in 0..3 {
            for kx in 0..3 {
                let row = (ci * 9 + ky * 3 + kx) * n;
                let dst = &mut col[row..row + n];
                for (r, d) in dst.chunks_exact_mut(w).enumerate() {
                    let sy = (r0 + r + ky) as isize - 1;
                    if sy < 0 || sy >= h as isize {
                        d.fill(0.0);
                        continue;
                    }
                    let s = &src[sy as usize * w..(sy as usize + 1) * w];
                    match kx {
                        0 => {
                            d[0] = 0.0;
                            d[1..].copy_from_slice(&s[..w - 1]);
                        }
                        1 => d.copy_from_slice(s),
                        _ => {
                            d[..w - 1].copy_from_slice(&s[1..]);
                            d[w - 1] = 0.0;
                        }
                    }
                }
            }
        }
    }
}

/// 1x1 convolution with bias: the output heads.
pub fn conv1x1(x: &Feature, cout: usize, weight: &[f32], bias: &[f32]) -> Feature {
    let plane = x.h * x.w;
    let mut out = Feature::zeros(cout, x.h, x.w);
    if plane > 0 {
        // SAFETY: `out` is cout x plane, densely packed, and only this call writes it.
        unsafe {
            matmul(
                (cout, plane, x.c),
                (out.data.as_mut_ptr(), plane),
                weight,
                &x.data,
                true,
            )
        };
    }
    for (o, chunk) in out.data.chunks_mut(plane.max(1)).enumerate().take(cout) {
        for v in chunk {
            *v += bias[o];
        }
    }
    out
}

/// 2x2 max pooling, stride 2, floor mode.
pub fn maxpool2(x: &Feature) -> Feature {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut out = Feature::zeros(x.c, h, w);
    if h == 0 || w == 0 {
        return out;
    }
    let planes: Vec<_> = out.data.chunks_mut(h * w).enumerate().collect();
    crate::par::for_each(planes, |(c, dst)| {
        let src = x.plane(c);
        for y in 0..h {
            let a = &src[2 * y * x.w..];
            let b = &src[(2 * y + 1) * x.w..];
            for xx in 0..w {
                dst[y * w + xx] = a[2 * xx]
                    .max(a[2 * xx + 1])
                    .max(b[2 * xx])
                    .max(b[2 * xx + 1]);
            }
        }
    });
    out
}

/// Source positions of PyTorch's bilinear `align_corners=True` resize of one axis.
fn bilinear_taps(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = if output > 1 {
        (input as f32 - 1.0) / (output as f32 - 1.0)
    } else {
        0.0
    };
    (0..output)
        .map(|d| {
            let real = scale * d as f32;
            let i0 = (real as usize).min(input - 1);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            let l1 = real - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// Upsamples `deep` ×2 (bilinear, align_corners=True), zero-pads it at the bottom/right to the
/// skip's size, and concatenates `[upsampled deep, skip]` along channels.
pub fn up_concat(deep: &Feature, skip: &Feature) -> Feature {
    let mut out = upsample_padded(deep, skip.h, skip.w, skip.c);
    out.data[deep.c * skip.h * skip.w..].copy_from_slice(&skip.data);
    out
}

/// `deep` upsampled ×2 and zero-padded to `h x w`, in the first `deep.c` channels of a map
/// with `extra` more (zero) channels after them, so a concatenation needs no second copy.
pub fn upsample_padded(deep: &Feature, h: usize, w: usize, extra: usize) -> Feature {
    let (uh, uw) = (deep.h * 2, deep.w * 2);
    let mut out = Feature::zeros(deep.c + extra, h, w);
    // Pads are non-negative in a U-Net (max-pool floors, so 2 * deep <= skip); top/left get
    // pad // 2, which is 0 for the 1-pixel deficits that occur.
    let (top, left) = ((h.saturating_sub(uh)) / 2, (w.saturating_sub(uw)) / 2);
    if deep.h > 0 && deep.w > 0 && h > 0 && w > 0 {
        let ty = bilinear_taps(deep.h, uh);
        let tx = bilinear_taps(deep.w, uw);
        let planes: Vec<_> = out
            .data
            .chunks_mut(h * w)
            .take(deep.c)
            .enumerate()
            .collect();
        crate::par::for_each(planes, |(c, dst)| {
            let src = deep.plane(c);
            for (y, (y0, y1, wy0, wy1)) in ty.iter().enumerate() {
                let yy = y + top;
                if yy >= h {
                    break;
                }
                let r0 = &src[y0 * deep.w..(y0 + 1) * deep.w];
                let r1 = &src[y1 * deep.w..(y1 + 1) * deep.w];
                for (x, (x0, x1, wx0, wx1)) in tx.iter().enumerate() {
                    let xx = x + left;
                    if xx >= w {
                        break;
                    }
                    let top_v = wx0 * r0[*x0] + wx1 * r0[*x1];
                    let bot_v = wx0 * r1[*x0] + wx1 * r1[*x1];
                    dst[yy * w + xx] = wy0 * top_v + wy1 * bot_v;
                }
            }
        });
    }
    out
}

/// The attention gate of spec §d.7: `psi = sigmoid(BN(conv(relu(W_gate(g) + W_x(skip)))))`,
/// one map `[1, h, w]`; returns the concatenation `[skip * psi, g]` (skip first, the opposite
/// of the plain block) and `psi`.
pub fn attention_concat(
    g: &Feature,
    skip: &Feature,
    w_gate: &ConvBn,
    w_x: &ConvBn,
    psi: &ConvBn,
) -> (Feature, Feature) {
    let mut a = w_gate.forward(g);
    let b = w_x.forward(skip);
    for (p, q) in a.data.iter_mut().zip(&b.data) {
        *p = (*p + q).max(0.0);
    }
    let mut coeff = psi.forward(&a);
    for v in &mut coeff.data {
        *v = 1.0 / (1.0 + (-*v).exp());
    }
    let plane = skip.h * skip.w;
    let mut out = Feature::zeros(skip.c + g.c, skip.h, skip.w);
    if plane > 0 {
        for (dst, src) in out.data[..skip.c * plane]
            .chunks_mut(plane)
            .zip(skip.data.chunks(plane))
        {
            for ((d, s), p) in dst.iter_mut().zip(src).zip(&coeff.data) {
                *d = s * p;
            }
        }
    }
    out.data[skip.c * plane..].copy_from_slice(&g.data);
    (out, coeff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_conv(x: &Feature, cout: usize, w: &[f32]) -> Feature {
        let mut out = Feature::zeros(cout, x.h, x.w);
        for o in 0..cout {
            for y in 0..x.h as isize {
                for xx in 0..x.w as isize {
                    let mut s = 0.0;
                    for c in 0..x.c {
                        for ky in 0..3isize {
                            for kx in 0..3isize {
                                let (sy, sx) = (y + ky - 1, xx + kx - 1);
                                if sy >= 0 && sx >= 0 && sy < x.h as isize && sx < x.w as isize {
                                    s += w[((o * x.c + c) * 3 + ky as usize) * 3 + kx as usize]
                                        * x.data[(c * x.h + sy as usize) * x.w + sx as usize];
                                }
                            }
                        }
                    }
                    out.data[(o * x.h + y as usize) * x.w + xx as usize] = s;
                }
            }
        }
        out
    }

    #[test]
    fn conv_matches_a_naive_convolution() {
        let (c, h, w, o) = (3, 7, 5, 4);
        let x = Feature {
            c,
            h,
            w,
            data: (0..c * h * w)
                .map(|i| ((i * 37 % 11) as f32) - 5.0)
                .collect(),
        };
        let wt: Vec<f32> = (0..o * c * 9)
            .map(|i| ((i * 13 % 7) as f32) * 0.25 - 0.7)
            .collect();
        let a = conv3x3(&x, o, &wt);
        let b = naive_conv(&x, o, &wt);
        for (p, q) in a.data.iter().zip(&b.data) {
            assert!((p - q).abs() < 1e-4, "{p} vs {q}");
        }
    }

    #[test]
    fn upsampling_follows_align_corners() {
        // 2 -> 4 with align_corners: positions 0, 1/3, 2/3, 1.
        let deep = Feature {
            c: 1,
            h: 1,
            w: 2,
            data: vec![0.0, 3.0],
        };
        let skip = Feature::zeros(1, 3, 5);
        let out = up_concat(&deep, &skip);
        assert_eq!((out.c, out.h, out.w), (2, 3, 5));
        let row0: Vec<f32> = out.data[0..5].to_vec();
        assert!((row0[1] - 1.0).abs() < 1e-6 && (row0[2] - 2.0).abs() < 1e-6);
        assert_eq!(row0[4], 0.0, "padded column");
        assert_eq!(&out.data[10..15], &[0.0; 5], "padded row");
    }

    #[test]
    fn pooling_floors_odd_sizes() {
        let x = Feature {
            c: 1,
            h: 3,
            w: 3,
            data: (0..9).map(|v| v as f32).collect(),
        };
        let p = maxpool2(&x);
        assert_eq!((p.h, p.w, p.data[0]), (1, 1, 4.0));
    }
}
