//! Splitting a list of scenes into shards, so that several machines (a Slurm job array, or
//! just several shells) each take a part and `icelens merge` pools the parts afterwards.
//!
//! The split must not depend on the order the shell or the scheduler lists the files in, or
//! two tasks could take the same scene and another none. So the list is first sorted by
//! file name (then by the whole path, for names that repeat in different folders), and scene
//! `i` of the sorted list (counting from 0) goes to shard `i mod N + 1`: shard `K/N` takes
//! positions `K-1, K-1+N, K-1+2N, ...`. Shards count from 1, as `sbatch --array=1-N` does.
//! Round robin rather than blocks: the names start with the acquisition time, so every
//! shard gets a spread of dates and, roughly, an equal share of the work.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Shard `index` of `count` (1 ≤ index ≤ count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// A `--shard` value that is not `K/N` with 1 ≤ K ≤ N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "shard \"{text}\": {problem}; expected K/N with 1 <= K <= N, e.g. 2/8 (shards count from 1)"
)]
pub struct ShardError {
    pub text: String,
    pub problem: String,
}

impl Shard {
    /// Shard `index` (from 1) of `count`.
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        let err = |problem: String| ShardError {
            text: format!("{index}/{count}"),
            problem,
        };
        if count == 0 {
            return Err(err("N must be at least 1".into()));
        }
        if index == 0 {
            return Err(err("K is 0 but shards count from 1".into()));
        }
        if index > count {
            return Err(err(format!("K is larger than N ({index} > {count})")));
        }
        Ok(Shard { index, count })
    }

    /// The whole list as one shard.
    pub fn whole() -> Shard {
        Shard { index: 1, count: 1 }
    }

    /// K, from 1.
    pub fn index(self) -> usize {
        self.index
    }

    /// N.
    pub fn count(self) -> usize {
        self.count
    }

    /// Whether position `i` (from 0) of the sorted list belongs to this shard.
    pub fn holds(self, i: usize) -> bool {
        i % self.count == self.index - 1
    }

    /// This shard's paths: the list sorted by [`sort_paths`], every N-th from position K-1.
    pub fn select<P: AsRef<Path> + Clone>(self, paths: &[P]) -> Vec<P> {
        sort_paths(paths)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.holds(*i))
            .map(|(_, p)| p)
            .collect()
    }
}

/// The file name of a path as text (the whole path if it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Paths sorted by file name, then by the whole path: the order shards are cut from, and the
/// order `icelens merge` lists scenes in.
pub fn sort_paths<P: AsRef<Path> + Clone>(paths: &[P]) -> Vec<P> {
    let mut out = paths.to_vec();
    out.sort_by(|a, b| {
        let (a, b) = (a.as_ref(), b.as_ref());
        file_name(a).cmp(&file_name(b)).then_with(|| a.cmp(b))
    });
    out
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let err = |problem: &str| ShardError {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let (k, n) = text.split_once('/').ok_or_else(|| err("no \"/\""))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| err("K is not a whole number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        Shard::new(k, n).map_err(|e| ShardError {
            text: text.to_string(),
            problem: e.problem,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Serialize for Shard {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let s: Shard = "2/5".parse().unwrap();
        assert_eq!((s.index(), s.count()), (2, 5));
        assert_eq!(s.to_string(), "2/5");
        assert_eq!(" 1 / 1 ".parse::<Shard>().unwrap(), Shard::whole());
        for (bad, why) in [
            ("0/3", "count from 1"),
            ("4/3", "larger than N"),
            ("1/0", "at least 1"),
            ("3", "no \"/\""),
            ("a/3", "K is not"),
            ("1/-2", "N is not"),
            ("", "no \"/\""),
        ] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_partition_the_sorted_list_whatever_the_given_order() {
        let names: Vec<String> = (0..11)
            .map(|i| format!("/d{}/s{:02}.nc", i % 3, i))
            .collect();
        let mut shuffled = names.clone();
        shuffled.reverse();
        shuffled.swap(2, 7);
        for n in 1..=12 {
            let mut seen: Vec<String> = Vec::new();
            for k in 1..=n {
                let shard = Shard::new(k, n).unwrap();
                let part = shard.select(&shuffled);
                assert_eq!(part, shard.select(&names), "order of the input matters");
                // Round robin: sizes differ by at most one.
                assert!(part.len() == 11 / n || part.len() == 11 / n + 1);
                seen.extend(part);
            }
            seen.sort();
            let mut all = names.clone();
            all.sort();
            assert_eq!(seen, all, "N = {n}: every scene exactly once");
        }
        // Sorted by file name, not by folder.
        let p = ["/b/a.nc", "/a/c.nc", "/c/b.nc"];
        assert_eq!(sort_paths(&p), vec!["/b/a.nc", "/c/b.nc", "/a/c.nc"]);
        assert_eq!(Shard::new(2, 2).unwrap().select(&p), vec!["/c/b.nc"]);
    }

    #[test]
    fn serde_round_trip_and_bad_text() {
        let s = Shard::new(3, 4).unwrap();
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, "\"3/4\"");
        assert_eq!(serde_json::from_str::<Shard>(&j).unwrap(), s);
        assert!(serde_json::from_str::<Shard>("\"5/4\"").is_err());
    }
}
