//! The SAR stretch: numpy's linear quantiles of the valid pixels.

use icelens_core::render::stretch_limits;

/// numpy.quantile(x, p) with the default linear method, by sorting.
fn numpy_quantile(x: &[f32], p: f64) -> f32 {
    let mut v = x.to_vec();
    v.sort_by(f32::total_cmp);
    let pos = p * (v.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    let a = v[i] as f64;
    let b = v[(i + 1).min(v.len() - 1)] as f64;
    (a + (b - a) * f) as f32
}

#[test]
fn quantiles_equal_numpys_and_skip_pixels_without_data() {
    // 1..=100 shuffled: np.quantile(..., [0.025, 0.975]) == [3.475, 97.525].
    let values: Vec<f32> = (0..100).map(|i| ((i * 37) % 100 + 1) as f32).collect();
    let valid = vec![1.0f32; 100];
    let (lo, hi) = stretch_limits(&values, &valid, 0.025, 0.975).unwrap();
    assert!(
        (lo - 3.475).abs() < 1e-5 && (hi - 97.525).abs() < 1e-5,
        "{lo} {hi}"
    );
    // Pseudo-random values with repeats, NaN and masked pixels.
    let mut x = 12345u64;
    let mut values = vec![];
    let mut valid = vec![];
    for _ in 0..10_001 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = ((x >> 33) % 997) as f32 / 7.0 - 50.0;
        values.push(if x.is_multiple_of(101) { f32::NAN } else { v });
        valid.push(if x.is_multiple_of(13) { 0.0 } else { 1.0 });
    }
    let kept: Vec<f32> = values
        .iter()
        .zip(&valid)
        .filter(|(v, m)| **m != 0.0 && v.is_finite())
        .map(|(v, _)| *v)
        .collect();
    for (p, q) in [(0.025, 0.975), (0.0, 1.0), (0.5, 0.9999)] {
        let (lo, hi) = stretch_limits(&values, &valid, p, q).unwrap();
        assert_eq!(lo, numpy_quantile(&kept, p), "{p}");
        assert_eq!(hi, numpy_quantile(&kept, q), "{q}");
    }
    assert_eq!(stretch_limits(&[1.0], &[0.0], 0.1, 0.9), None);
    assert_eq!(stretch_limits(&[4.0], &[1.0], 0.1, 0.9), Some((4.0, 4.0)));
}
