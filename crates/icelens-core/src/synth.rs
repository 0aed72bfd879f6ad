//! Seeded synthetic scenes with the real file layout, at any size up to a real scene's.
//!
//! The page needs a demo scene it can ship, benchmarks need realistic sizes, and training the
//! demo model needs labelled data that cannot be redistributed from the real dataset. The
//! generator follows the shared fixture generator (`make_scenes.py`): ice-chart polygons
//! (warped Voronoi cells) with class codes per ice regime, SAR backscatter whose level and
//! texture depend on the regime, an incidence-angle ramp, land with distance-to-land zone ids,
//! a no-data region outside a tilted swath, and AMSR2/ERA5 block means on the 2 km grid. All
//! floats are standard scaled with the challenge's global statistics, like the real files.
//!
//! The arrays are written as netCDF-3 (CDF-2) with the `netcdf3` crate, so a generated file
//! goes through exactly the same reader as a user's file.

use netcdf3::DataSet;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::channels::{self, global_mean_std, INPUT_CHANNELS, SAR_CHANNELS};
use crate::chart::{Chart, CHART_FILL};
use crate::nc3::{write_cdf2, Data};

/// 80 m SAR pixels per 2 km grid cell.
const DELTA: usize = 25;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub lines: usize,
    pub samples: usize,
    pub seed: u64,
    /// `dmi` or `cis`.
    pub service: String,
    /// Acquisition start, `YYYYMMDDThhmmss`.
    pub stamp: String,
    /// Include SIC/SOD/FLOE (training-style) or not (test-style).
    pub labelled: bool,
}

impl SynthSpec {
    pub fn new(lines: usize, samples: usize, seed: u64) -> Self {
        Self {
            lines,
            samples,
            seed,
            service: "dmi".into(),
            stamp: "20210315T101500".into(),
            labelled: true,
        }
    }

    /// The ready-to-train file name, `<stamp>_<service>_prep.nc`.
    pub fn file_name(&self) -> String {
        format!("{}_{}_prep.nc", self.stamp, self.service)
    }
}

/// (SIC, SOD, FLOE, HH dB, HV dB, texture dB) of each ice regime, as in the fixtures.
const REGIMES: [(&str, u8, u8, u8, f32, f32, f32); 10] = [
    ("water", 0, 0, 0, -20.0, -27.5, 1.6),
    ("thick_fyi", 10, 4, 4, -15.5, -22.5, 1.4),
    ("old", 10, 5, 5, -10.5, -18.0, 1.8),
    ("young", 9, 2, 1, -13.0, -21.0, 1.2),
    ("new", 6, 1, 255, -21.0, -27.0, 0.6),
    ("thin_fyi", 10, 3, 2, -17.0, -24.0, 1.0),
    ("marginal", 3, 4, 3, -18.0, -25.5, 1.5),
    ("fast", 10, 4, 255, -16.0, -23.0, 0.8),
    ("ambiguous", 7, 255, 255, -16.5, -24.0, 1.3),
    ("unknown", 255, 255, 255, -17.0, -24.0, 1.2),
];

/// (water K, first-year ice K, land K) of the 14 AMSR2 channels, in input order.
const AMSR2: [(f32, f32, f32); 14] = [
    (82.0, 228.0, 245.0),
    (160.0, 248.0, 255.0),
    (83.0, 229.0, 245.0),
    (161.0, 249.0, 255.0),
    (88.0, 231.0, 246.0),
    (167.0, 251.0, 256.0),
    (104.0, 233.0, 247.0),
    (185.0, 249.0, 256.0),
    (120.0, 236.0, 248.0),
    (196.0, 249.0, 257.0),
    (135.0, 229.0, 248.0),
    (210.0, 244.0, 257.0),
    (172.0, 222.0, 250.0),
    (203.0, 233.0, 258.0),
];

/// Upper bounds (km) of distance-to-land zones 1…40; zone 41 is beyond 300 km.
const DIST_EDGES: [f32; 40] = [
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0,
    17.0, 18.0, 19.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
    125.0, 150.0, 175.0, 200.0, 225.0, 250.0, 275.0, 300.0,
];

/// The generated arrays, in the layout of a scene file.
pub struct SynthScene {
    pub spec: SynthSpec,
    pub grid_lines: usize,
    pub grid_samples: usize,
    /// HH, HV, incidence, distance map (standard scaled).
    pub sar: [Vec<f32>; 4],
    pub coarse: Vec<Vec<f32>>,
    pub charts: [Vec<u8>; 3],
    pub lat: Vec<f64>,
    pub lon: Vec<f64>,
}

fn normal(rng: &mut Pcg64Mcg) -> f32 {
    // Box-Muller: enough for texture, and no extra dependency.
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Smooth random field with unit variance and features about `cell` pixels wide: Gaussian
/// values on a coarse lattice, interpolated with a smoothstep. Much cheaper than a Gaussian
/// blur at real scene sizes.
fn smooth(rng: &mut Pcg64Mcg, h: usize, w: usize, cell: f32) -> Vec<f32> {
    let cell = cell.max(1.0);
    let gh = (h as f32 / cell).ceil() as usize + 2;
    let gw = (w as f32 / cell).ceil() as usize + 2;
    let lattice: Vec<f32> = (0..gh * gw).map(|_| normal(rng)).collect();
    let fade = |t: f32| t * t * (3.0 - 2.0 * t);
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        let fy = y as f32 / cell;
        let (y0, ty) = (fy as usize, fade(fy.fract()));
        for x in 0..w {
            let fx = x as f32 / cell;
            let (x0, tx) = (fx as usize, fade(fx.fract()));
            let v = |yy: usize, xx: usize| lattice[yy * gw + xx];
            let a = v(y0, x0) + (v(y0, x0 + 1) - v(y0, x0)) * tx;
            let b = v(y0 + 1, x0) + (v(y0 + 1, x0 + 1) - v(y0 + 1, x0)) * tx;
            out[y * w + x] = a + (b - a) * ty;
        }
    }
    normalise(&mut out);
    out
}

fn normalise(v: &mut [f32]) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|x| *x as f64).sum::<f64>() / n;
    let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt().max(1e-12);
    for x in v {
        *x = ((*x as f64 - mean) / sd) as f32;
    }
}

fn scale(name: &str, x: f32) -> f32 {
    let (m, s) = global_mean_std(name).unwrap_or((0.0, 1.0));
    ((x as f64 - m) / s) as f32
}

/// Euclidean-ish distance (pixels) to the nearest `true` cell: two-pass chamfer 3-4.
fn distance_to(mask: &[bool], h: usize, w: usize) -> Vec<f32> {
    const BIG: f32 = 1e9;
    let mut d: Vec<f32> = mask.iter().map(|m| if *m { 0.0 } else { BIG }).collect();
    let (a, b) = (1.0f32, std::f32::consts::SQRT_2);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut v = d[i];
            if x > 0 {
                v = v.min(d[i - 1] + a);
            }
            if y > 0 {
                v = v.min(d[i - w] + a);
                if x > 0 {
                    v = v.min(d[i - w - 1] + b);
                }
                if x + 1 < w {
                    v = v.min(d[i - w + 1] + b);
                }
            }
            d[i] = v;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut v = d[i];
            if x + 1 < w {
                v = v.min(d[i + 1] + a);
            }
            if y + 1 < h {
                v = v.min(d[i + w] + a);
                if x + 1 < w {
                    v = v.min(d[i + w + 1] + b);
                }
                if x > 0 {
                    v = v.min(d[i + w - 1] + b);
                }
            }
            d[i] = v;
        }
    }
    d
}

/// Generates a scene. Sizes below 50 x 50 are raised to it (the 2 km grid needs 2 cells).
pub fn generate(spec: &SynthSpec) -> SynthScene {
    let (h, w) = (spec.lines.max(50), spec.samples.max(50));
    let mut rng = Pcg64Mcg::seed_from_u64(spec.seed);
    let n = h * w;

    // Land: a smooth blob entering from one edge.
    let edge = rng.random_range(0..4u8);
    let blob = smooth(&mut rng, h, w, h.max(w) as f32 / 6.0);
    let mut land = vec![false; n];
    for y in 0..h {
        for x in 0..w {
            let g = match edge {
                0 => y as f32 / h as f32,
                1 => 1.0 - y as f32 / h as f32,
                2 => x as f32 / w as f32,
                _ => 1.0 - x as f32 / w as f32,
            };
            land[y * w + x] = 0.55 * blob[y * w + x] + 2.6 * g > 2.05;
        }
    }
    drop(blob);

    // Swath: a tilted rectangle leaving a no-data corner.
    let ang = rng.random_range(8.0f32..22.0).to_radians();
    let (ca, sa) = (ang.cos(), ang.sin());
    let uv = |y: usize, x: usize| {
        let (dx, dy) = (x as f32 - w as f32 * 0.5, y as f32 - h as f32 * 0.5);
        (dx * ca + dy * sa, -dx * sa + dy * ca)
    };
    let mut valid = vec![false; n];
    let mut inc_deg = vec![0f32; n];
    for y in 0..h {
        for x in 0..w {
            let (u, v) = uv(y, x);
            let i = y * w + x;
            let swath = u.abs() < 0.47 * w as f32
                && v.abs() < 0.52 * h as f32
                && v > -0.38 * h as f32 + 0.2 * u;
            valid[i] = swath && !land[i];
            inc_deg[i] = 19.0 + 27.0 * (u / w as f32 + 0.5).clamp(0.0, 1.0);
        }
    }

    // Ice chart polygons: warped Voronoi cells with one regime each.
    let n_poly = rng.random_range(9..14usize);
    let seeds: Vec<(f32, f32)> = (0..n_poly)
        .map(|_| {
            (
                rng.random_range(0.0..h as f32),
                rng.random_range(0.0..w as f32),
            )
        })
        .collect();
    let mut order: Vec<usize> = (2..REGIMES.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut regime_of: Vec<usize> = vec![0, 1];
    regime_of.extend(order);
    while regime_of.len() < n_poly {
        regime_of.push(rng.random_range(0..6));
    }
    let marginal_sic: Vec<u8> = (0..n_poly).map(|_| rng.random_range(1..6u8)).collect();
    let warp_cell = (h.min(w) as f32 / 20.0).max(4.0);
    let warp_amp = (h.min(w) as f32 / 30.0).max(3.0);
    let wy = smooth(&mut rng, h, w, warp_cell);
    let wx = smooth(&mut rng, h, w, warp_cell);
    let mut poly = vec![0u8; n];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (py, px) = (y as f32 + warp_amp * wy[i], x as f32 + warp_amp * wx[i]);
            let mut best = (f32::MAX, 0usize);
            for (k, (sy, sx)) in seeds.iter().enumerate() {
                let d = (py - sy).powi(2) + (px - sx).powi(2);
                if d < best.0 {
                    best = (d, k);
                }
            }
            poly[i] = best.1 as u8;
        }
    }
    drop((wy, wx));

    let mut charts = [
        vec![CHART_FILL; n],
        vec![CHART_FILL; n],
        vec![CHART_FILL; n],
    ];
    let mut frac = vec![0.55f32; n];
    let tex_hh = smooth(&mut rng, h, w, 3.0);
    let tex_hv = smooth(&mut rng, h, w, 4.0);
    let streak = smooth(&mut rng, h, w, 12.0);
    let mut hh = vec![0f32; n];
    let mut hv = vec![0f32; n];
    for i in 0..n {
        let p = poly[i] as usize;
        let (_, mut c, s, f, a, b, t) = REGIMES[regime_of[p]];
        if REGIMES[regime_of[p]].0 == "marginal" {
            c = marginal_sic[p];
        }
        if valid[i] {
            charts[0][i] = c;
            charts[1][i] = s;
            charts[2][i] = f;
            frac[i] = if c == CHART_FILL {
                0.6
            } else {
                c as f32 / 10.0
            };
        }
        let water = s == 0;
        let (nh, nv) = (normal(&mut rng), normal(&mut rng));
        let hh_db = a + t * tex_hh[i] + 0.7 * nh - 0.22 * (inc_deg[i] - 34.0)
            + if water { 2.5 * streak[i] } else { 0.0 };
        let hv_db = b + 0.8 * t * tex_hv[i] + 0.9 * nv - 0.05 * (inc_deg[i] - 34.0);
        if valid[i] {
            hh[i] = scale(SAR_CHANNELS[0], hh_db);
            hv[i] = scale(SAR_CHANNELS[1], hv_db);
        }
    }
    drop((tex_hh, tex_hv, streak, poly));
    let inc: Vec<f32> = (0..n)
        .map(|i| {
            if valid[i] {
                scale(SAR_CHANNELS[2], inc_deg[i])
            } else {
                0.0
            }
        })
        .collect();
    drop(inc_deg);

    // Distance-to-land zone ids (0 = land), defined everywhere.
    let dist_px = distance_to(&land, h, w);
    let no_land = land.iter().all(|l| !*l);
    let dist: Vec<f32> = dist_px
        .iter()
        .zip(&land)
        .map(|(d, l)| {
            let id = if *l {
                0
            } else if no_land {
                DIST_EDGES.len() + 1
            } else {
                let km = d * 0.08;
                DIST_EDGES.iter().position(|e| km <= *e).unwrap_or(40) + 1
            };
            scale(SAR_CHANNELS[3], id as f32)
        })
        .collect();
    drop(dist_px);

    // 2 km grid: block means of ice fraction and land, then brightness temperatures and ERA5.
    let (gh, gw) = (h / DELTA, w / DELTA);
    let block = |v: &dyn Fn(usize) -> f32| -> Vec<f32> {
        let mut out = vec![0f32; gh * gw];
        for gy in 0..gh {
            for gx in 0..gw {
                let mut s = 0.0;
                for y in gy * DELTA..(gy + 1) * DELTA {
                    for x in gx * DELTA..(gx + 1) * DELTA {
                        s += v(y * w + x);
                    }
                }
                out[gy * gw + gx] = s / (DELTA * DELTA) as f32;
            }
        }
        out
    };
    let f2 = block(&|i| if valid[i] { frac[i] } else { 0.55 });
    let l2 = block(&|i| if land[i] { 1.0 } else { 0.0 });
    let mut coarse = Vec::with_capacity(channels::N_COARSE);
    for (k, (tw, ti, tl)) in AMSR2.iter().enumerate() {
        let v: Vec<f32> = (0..gh * gw)
            .map(|j| {
                let tb = tw + f2[j] * (ti - tw);
                let tb = tb * (1.0 - l2[j]) + tl * l2[j] + 0.8 * normal(&mut rng);
                scale(INPUT_CHANNELS[4 + k], tb)
            })
            .collect();
        coarse.push(v);
    }
    let field = |rng: &mut Pcg64Mcg, cell: f32| smooth(rng, gh, gw, cell);
    let t2m: Vec<f32> = field(&mut rng, 3.0)
        .iter()
        .zip(&f2)
        .map(|(s, f)| 262.0 + 6.0 * s - 8.0 * f)
        .collect();
    let u10: Vec<f32> = field(&mut rng, 4.0).iter().map(|s| 6.0 * s + 1.0).collect();
    let v10: Vec<f32> = field(&mut rng, 4.0).iter().map(|s| 6.0 * s - 0.5).collect();
    let skt: Vec<f32> = field(&mut rng, 2.0)
        .iter()
        .zip(&t2m)
        .map(|(s, t)| t - 1.5 + 0.8 * s)
        .collect();
    let tcwv: Vec<f32> = field(&mut rng, 3.0)
        .iter()
        .map(|s| (6.0 + 3.0 * s).max(0.5))
        .collect();
    let tclw: Vec<f32> = field(&mut rng, 2.0)
        .iter()
        .map(|s| (0.04 + 0.05 * s).max(0.0))
        .collect();
    for (k, raw) in [u10, v10, t2m, skt, tcwv, tclw].into_iter().enumerate() {
        let name = INPUT_CHANNELS[18 + k];
        coarse.push(raw.into_iter().map(|x| scale(name, x)).collect());
    }

    // 21 x 21 tie points (first axis samples), around a place the service charts.
    let (lat0, lon0) = if spec.service == "cis" {
        (60.5, -62.0)
    } else {
        (63.0, -40.0)
    };
    let (cang, sang) = (ang.cos() as f64, ang.sin() as f64);
    let mut lat = Vec::with_capacity(441);
    let mut lon = Vec::with_capacity(441);
    for si in 0..21 {
        for li in 0..21 {
            let s = -1.0 + si as f64 / 10.0;
            let l = -1.0 + li as f64 / 10.0;
            lat.push(lat0 + 0.5 * (h as f64 * 0.08 / 111.0) * (-l * cang + s * sang));
            lon.push(
                lon0 + 0.5
                    * (w as f64 * 0.08 / (111.0 * f64::cos(lat0.to_radians())))
                    * (s * cang + l * sang),
            );
        }
    }

    SynthScene {
        spec: SynthSpec {
            lines: h,
            samples: w,
            ..spec.clone()
        },
        grid_lines: gh,
        grid_samples: gw,
        sar: [hh, hv, inc, dist],
        coarse,
        charts,
        lat,
        lon,
    }
}

impl SynthScene {
    /// The raw-dataset style name the fork's metadata parser reads (§g.1).
    pub fn original_id(&self) -> String {
        let s = &self.spec.stamp;
        let upstream = format!("S1A_EW_GRDM_1SDH_{s}_{s}_017345_020A1B_3C2D");
        if self.spec.service == "cis" {
            format!(
                "{upstream}_icechart_cis_SGRDIFOXE_{}Z_pl_a.nc",
                &s[..13.min(s.len())]
            )
        } else {
            let digits: String = s.chars().filter(|c| *c != 'T').take(12).collect();
            format!("{upstream}_icechart_dmi_{digits}_NorthWest_RIC.nc")
        }
    }

    /// Encodes the scene as a netCDF-3 (CDF-2) file with the ready-to-train layout.
    ///
    /// Unlike the real files, floats carry no `_FillValue = NaN`: `netcdf3` finds a variable
    /// again by comparing its attributes, and NaN never equals itself. The fill convention
    /// that matters (`variable_fill_value` = 0, `chart_fill_value` = 255) is kept.
    pub fn to_netcdf(&self) -> Result<Vec<u8>, String> {
        let (h, w) = (self.spec.lines, self.spec.samples);
        let file = self.spec.file_name();
        let e = |e: netcdf3::InvalidDataSet| format!("{file}: {e:?}");
        let mut ds = DataSet::new();
        for (dim, size) in [
            (channels::DIM_LINES, h),
            (channels::DIM_SAMPLES, w),
            (channels::DIM_TIE_SAMPLES, 21),
            (channels::DIM_TIE_LINES, 21),
            (channels::DIM_GRID_LINES, self.grid_lines),
            (channels::DIM_GRID_SAMPLES, self.grid_samples),
        ] {
            ds.add_fixed_dim(dim, size).map_err(e)?;
        }
        let full = [channels::DIM_LINES, channels::DIM_SAMPLES];
        let grid = [channels::DIM_GRID_LINES, channels::DIM_GRID_SAMPLES];
        let tie = [channels::DIM_TIE_SAMPLES, channels::DIM_TIE_LINES];
        let chart_bits: Vec<Vec<i8>> = self
            .charts
            .iter()
            .map(|c| c.iter().map(|v| *v as i8).collect())
            .collect();
        let mut data: Vec<(&str, Data<'_>)> = Vec::new();
        if self.spec.labelled {
            for (k, chart) in Chart::ALL.iter().enumerate() {
                let name = chart.name();
                ds.add_var_i8(name, &full).map_err(e)?;
                ds.add_var_attr_string(name, "_Unsigned", "true")
                    .map_err(e)?;
                ds.add_var_attr_string(name, "polygon", chart.title())
                    .map_err(e)?;
                ds.add_var_attr_i32(name, "chart_fill_value", vec![255])
                    .map_err(e)?;
                data.push((name, Data::I8(&chart_bits[k])));
            }
        }
        for (name, values) in [(channels::LAT, &self.lat), (channels::LON, &self.lon)] {
            ds.add_var_f64(name, &tie).map_err(e)?;
            data.push((name, Data::F64(values)));
        }
        let upstream = self.original_id()[..67.min(self.original_id().len())].to_string();
        for (k, name) in SAR_CHANNELS.iter().enumerate() {
            ds.add_var_f32(name, &full).map_err(e)?;
            match k {
                0 | 1 => {
                    let pol = if k == 0 { "HH" } else { "HV" };
                    ds.add_var_attr_string(name, "polarisation", pol)
                        .map_err(e)?;
                    ds.add_var_attr_string(name, "upstream_id", &upstream)
                        .map_err(e)?;
                    ds.add_var_attr_string(name, "description", "Sigma0 in dB")
                        .map_err(e)?;
                    ds.add_var_attr_i32(name, "variable_fill_value", vec![0])
                        .map_err(e)?;
                }
                2 => ds
                    .add_var_attr_i32(name, "variable_fill_value", vec![0])
                    .map_err(e)?,
                _ => ds
                    .add_var_attr_string(
                        name,
                        "long_name",
                        "Distance to land zones numbered with ids ranging from 0 to 41",
                    )
                    .map_err(e)?,
            }
            data.push((name, Data::F32(&self.sar[k])));
        }
        for (k, name) in channels::coarse_channels().iter().enumerate() {
            ds.add_var_f32(name, &grid).map_err(e)?;
            data.push((name, Data::F32(&self.coarse[k])));
        }
        ds.add_global_attr_string("scene_id", &file).map_err(e)?;
        ds.add_global_attr_string("original_id", self.original_id())
            .map_err(e)?;
        ds.add_global_attr_string("ice_service", &self.spec.service)
            .map_err(e)?;
        ds.add_global_attr_i32("flip", vec![0]).map_err(e)?;
        ds.add_global_attr_i32("pixel_spacing", vec![80])
            .map_err(e)?;
        write_cdf2(&ds, &file, &data)
    }
}
