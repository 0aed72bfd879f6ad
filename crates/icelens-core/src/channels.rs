//! Variable names of the ready-to-train files and the model's channel order (spec §a.3, §b.1).

/// The 24 model input channels, in the order the starter kit feeds them to the U-Net.
pub const INPUT_CHANNELS: [&str; 24] = [
    "nersc_sar_primary",
    "nersc_sar_secondary",
    "sar_incidenceangle",
    "distance_map",
    "btemp_6_9h",
    "btemp_6_9v",
    "btemp_7_3h",
    "btemp_7_3v",
    "btemp_10_7h",
    "btemp_10_7v",
    "btemp_18_7h",
    "btemp_18_7v",
    "btemp_23_8h",
    "btemp_23_8v",
    "btemp_36_5h",
    "btemp_36_5v",
    "btemp_89_0h",
    "btemp_89_0v",
    "u10m_rotated",
    "v10m_rotated",
    "t2m",
    "skt",
    "tcwv",
    "tclw",
];

/// Channels on the 80 m SAR grid: the first four input channels.
pub const SAR_CHANNELS: [&str; 4] = [
    "nersc_sar_primary",
    "nersc_sar_secondary",
    "sar_incidenceangle",
    "distance_map",
];

/// Number of channels on the coarse 2 km grid (AMSR2 brightness temperatures, then ERA5).
pub const N_COARSE: usize = 20;

/// Coarse channel names, in input order.
pub fn coarse_channels() -> &'static [&'static str] {
    &INPUT_CHANNELS[4..]
}

pub const LAT: &str = "sar_grid2d_latitude";
pub const LON: &str = "sar_grid2d_longitude";

pub const DIM_LINES: &str = "sar_lines";
pub const DIM_SAMPLES: &str = "sar_samples";
pub const DIM_TIE_SAMPLES: &str = "sar_sample_2dgrid_points";
pub const DIM_TIE_LINES: &str = "sar_line_2dgrid_points";
pub const DIM_GRID_LINES: &str = "2km_grid_lines";
pub const DIM_GRID_SAMPLES: &str = "2km_grid_samples";

/// The starter kit's global statistics (raw units) for turning stored z-scores back into dB.
pub const HH_MEAN_STD: (f64, f64) = (-14.5082551552228, 5.6597459193818676);
pub const HV_MEAN_STD: (f64, f64) = (-24.701205147144236, 4.746759305258515);

/// Raw-unit mean and standard deviation of each input channel (`misc/global_meanstd.npy`).
pub fn global_mean_std(name: &str) -> Option<(f64, f64)> {
    Some(match name {
        "nersc_sar_primary" => HH_MEAN_STD,
        "nersc_sar_secondary" => HV_MEAN_STD,
        "distance_map" => (23.627669500714102, 14.99018630794473),
        "btemp_6_9h" => (148.8469796145295, 61.64846862537627),
        "btemp_6_9v" => (203.51944545494723, 38.66643206594044),
        "btemp_7_3h" => (149.89896504342093, 61.67544463178433),
        "btemp_7_3v" => (204.20534015176978, 38.66622047733582),
        "btemp_10_7h" => (153.89169240998876, 60.875249835766844),
        "btemp_10_7v" => (208.90408657387925, 36.24495931413019),
        "btemp_18_7h" => (165.6802621430742, 52.617873035841676),
        "btemp_18_7v" => (218.5868342822609, 28.060389755926906),
        "btemp_23_8h" => (182.20893715257156, 42.88716195392868),
        "btemp_23_8v" => (226.39646658494573, 22.117582324875166),
        "btemp_36_5h" => (185.19472368457747, 38.6444384529263),
        "btemp_36_5v" => (228.20590185866286, 17.652645265307164),
        "btemp_89_0h" => (212.53745842027274, 22.584971395547413),
        "btemp_89_0v" => (241.25747874607808, 16.31096214404262),
        "u10m_rotated" => (0.6747986162545088, 4.749646758314658),
        "v10m_rotated" => (0.6075565949388854, 5.196104947581429),
        "t2m" => (268.6265490976146, 9.469170769562306),
        "skt" => (268.91015184833424, 10.305256438427369),
        "tcwv" => (7.747741728107202, 5.268575011079001),
        "tclw" => (0.041245511364735726, 0.07112806794202754),
        "sar_incidenceangle" => (33.99801788456536, 8.322267212079046),
        _ => return None,
    })
}
