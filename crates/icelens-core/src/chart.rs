//! The three ice charts, their classes and the challenge's colours (spec §c).

use serde::{Deserialize, Serialize};

/// Pixels of a chart that carry no class: land, no data, ambiguous or unfilled polygons.
pub const CHART_FILL: u8 = 255;

/// One of the three ice charts the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Chart {
    /// Sea ice concentration, 0…100 % in steps of 10.
    SIC,
    /// Stage of development.
    SOD,
    /// Floe size.
    FLOE,
}

impl Chart {
    pub const ALL: [Chart; 3] = [Chart::SIC, Chart::SOD, Chart::FLOE];

    /// Variable name in the scene files.
    pub fn name(self) -> &'static str {
        match self {
            Chart::SIC => "SIC",
            Chart::SOD => "SOD",
            Chart::FLOE => "FLOE",
        }
    }

    pub fn from_name(name: &str) -> Option<Chart> {
        Chart::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Long title used in the challenge's plots (`ICE_STRINGS`).
    pub fn title(self) -> &'static str {
        match self {
            Chart::SIC => "Sea Ice Concentration [%]",
            Chart::SOD => "Stage of Development",
            Chart::FLOE => "Floe Size",
        }
    }

    /// Names of the real classes 0..n; a chart value above the last one (except 255) is invalid.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            Chart::SIC => &[
                "0 %", "10 %", "20 %", "30 %", "40 %", "50 %", "60 %", "70 %", "80 %", "90 %",
                "100 %",
            ],
            Chart::SOD => &[
                "Open water",
                "New ice",
                "Young ice",
                "Thin FYI",
                "Thick FYI",
                "Old ice",
            ],
            Chart::FLOE => &[
                "Open water",
                "Cake ice",
                "Small floe",
                "Medium floe",
                "Big floe",
                "Vast floe",
                "Bergs",
            ],
        }
    }

    /// Number of real classes.
    pub fn n_classes(self) -> usize {
        self.classes().len()
    }

    /// Outputs of the challenge's classification head: one more than the real classes, the
    /// "mask" channel that training never targets (the loss ignores 255).
    pub fn n_outputs(self) -> usize {
        self.n_classes() + 1
    }

    /// Loss/score weight of the chart in the combined score.
    pub fn score_weight(self) -> f64 {
        match self {
            Chart::SIC | Chart::SOD => 2.0,
            Chart::FLOE => 1.0,
        }
    }

    /// Colours of the challenge's plots: matplotlib `jet` resampled to the class count,
    /// measured from matplotlib 3.11 (spec §c.3), as RGB.
    pub fn colours(self) -> &'static [[u8; 3]] {
        match self {
            Chart::SIC => &[
                [0x00, 0x00, 0x80],
                [0x00, 0x00, 0xf3],
                [0x00, 0x4c, 0xff],
                [0x00, 0xb3, 0xff],
                [0x29, 0xff, 0xce],
                [0x7b, 0xff, 0x7b],
                [0xce, 0xff, 0x29],
                [0xff, 0xc6, 0x00],
                [0xff, 0x68, 0x00],
                [0xf3, 0x09, 0x00],
                [0x80, 0x00, 0x00],
            ],
            Chart::SOD => &[
                [0x00, 0x00, 0x80],
                [0x00, 0x4c, 0xff],
                [0x29, 0xff, 0xce],
                [0xce, 0xff, 0x29],
                [0xff, 0x68, 0x00],
                [0x80, 0x00, 0x00],
            ],
            Chart::FLOE => &[
                [0x00, 0x00, 0x80],
                [0x00, 0x2a, 0xff],
                [0x00, 0xd4, 0xff],
                [0x7b, 0xff, 0x7b],
                [0xff, 0xe6, 0x00],
                [0xff, 0x48, 0x00],
                [0x80, 0x00, 0x00],
            ],
        }
    }

    /// Colour of a class value, `None` for 255 and for out-of-range values (drawn transparent).
    pub fn colour(self, class: u8) -> Option<[u8; 3]> {
        self.colours().get(class as usize).copied()
    }

    /// Whether `v` may appear in a chart: a class index or the fill value.
    pub fn is_valid_value(self, v: u8) -> bool {
        v == CHART_FILL || (v as usize) < self.n_classes()
    }
}

impl std::fmt::Display for Chart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_tables_match_class_counts() {
        for c in Chart::ALL {
            assert_eq!(c.colours().len(), c.n_classes(), "{c}");
        }
        assert_eq!(Chart::SIC.n_outputs(), 12);
        assert_eq!(Chart::SOD.n_outputs(), 7);
        assert_eq!(Chart::FLOE.n_outputs(), 8);
    }

    #[test]
    fn validity_of_values() {
        assert!(Chart::SIC.is_valid_value(10));
        assert!(!Chart::SIC.is_valid_value(11));
        assert!(Chart::SOD.is_valid_value(255));
        assert!(!Chart::SOD.is_valid_value(6));
        assert!(!Chart::FLOE.is_valid_value(7));
        assert_eq!(Chart::FLOE.colour(255), None);
        assert_eq!(Chart::from_name("floe"), Some(Chart::FLOE));
    }
}
