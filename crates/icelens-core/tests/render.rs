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

#[test]
fn quantiles_are_exact_when_every_value_shares_a_bucket_and_around_zero() {
    // All within [1, 1 + 2^-7): one bucket of the first pass, so the selection inside it
    // decides every rank. Repeats included.
    let mut x = 99u64;
    let values: Vec<f32> = (0..5003)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1.0 + ((x >> 40) % 600) as f32 * f32::EPSILON
        })
        .collect();
    let valid = vec![1.0f32; values.len()];
    for (p, q) in [(0.025, 0.975), (0.0, 1.0), (0.3, 0.31)] {
        let (lo, hi) = stretch_limits(&values, &valid, p, q).unwrap();
        assert_eq!(lo, numpy_quantile(&values, p), "{p}");
        assert_eq!(hi, numpy_quantile(&values, q), "{q}");
    }
    // Negative and positive zero, tiny values of both signs, large ones: the order of the
    // buckets is the order of the floats.
    let values = [
        -0.0f32, 0.0, 1e-30, -1e-30, -3.5, 2.0, 1e30, -1e30, 0.5, -0.5, 7.0,
    ];
    let valid = vec![1.0f32; values.len()];
    for p in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
        let (lo, _) = stretch_limits(&values, &valid, p, 1.0).unwrap();
        assert_eq!(lo.to_bits(), numpy_quantile(&values, p).to_bits(), "{p}");
    }
}
