//! `--memory`: how much a run over one scene may hold, which decides whether the scene goes
//! through the network whole, as the challenge runs it, or in tiles; `--tile` sets the tiles
//! instead.

use std::str::FromStr;

use icelens_model::{Architecture, InferOptions};

/// How scenes are run: within a memory budget, or in tiles of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub memory: Memory,
    /// Tiles of this many pixels (with the default halo) whatever the memory: the page's
    /// tiles are 384 px, so `--tile 384` gives its answer natively.
    pub tile: Option<usize>,
}

impl Plan {
    /// The options for one scene, and the budget they were planned within.
    pub fn options(
        &self,
        arch: &Architecture,
        lines: usize,
        samples: usize,
    ) -> (InferOptions, u64) {
        let budget = self.memory.budget();
        let opts = match self.tile {
            Some(tile) => InferOptions {
                tile: tile.max(1),
                whole_scene_max_pixels: 0,
                ..InferOptions::default()
            },
            None => InferOptions::within_memory(arch, lines, samples, budget),
        };
        (opts, budget)
    }
}

/// The budget of one scene's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// Three quarters of what the machine has available when each scene starts (earlier
    /// scenes' predictions, kept for the upload package, are then already counted).
    Available,
    /// A fixed number of bytes.
    Bytes(u64),
}

/// When the machine cannot say (not Linux): enough for a real scene in tiles.
const UNKNOWN_AVAILABLE: u64 = 4 << 30;

impl Memory {
    pub fn budget(self) -> u64 {
        match self {
            Memory::Bytes(b) => b,
            Memory::Available => {
                let available = std::fs::read_to_string("/proc/meminfo")
                    .ok()
                    .and_then(|m| mem_available(&m))
                    .unwrap_or(UNKNOWN_AVAILABLE);
                available / 4 * 3
            }
        }
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl FromStr for Memory {
    type Err = String;

    /// `12G`, `800M`, `1.5G`, `4096K` or plain bytes (binary units), or `available`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("available") {
            return Ok(Memory::Available);
        }
        let bad = || format!("{s:?} is not a size like 12G, 800M or 2147483648");
        let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let scale: u64 = match unit
            .to_ascii_uppercase()
            .trim_end_matches("IB")
            .trim_end_matches('B')
        {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return Err(bad()),
        };
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        let bytes = value * scale as f64;
        if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        Ok(Memory::Bytes(bytes as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_in_binary_units() {
        assert_eq!("12G".parse(), Ok(Memory::Bytes(12 << 30)));
        assert_eq!("800M".parse(), Ok(Memory::Bytes(800 << 20)));
        assert_eq!("1.5GiB".parse(), Ok(Memory::Bytes(3 << 29)));
        assert_eq!("2147483648".parse(), Ok(Memory::Bytes(1 << 31)));
        assert_eq!("available".parse(), Ok(Memory::Available));
        for bad in ["", "G", "12X", "-1G", "0", "nanG", "1e30T"] {
            assert!(bad.parse::<Memory>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn available_memory_comes_from_meminfo() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(mem_available(meminfo), Some(20_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }
}
