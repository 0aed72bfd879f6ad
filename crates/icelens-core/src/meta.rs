//! What a scene's names tell about it: mission, acquisition time, ice service, region (§g.1).
//!
//! These are the "conditions" users break their scores down by. The names come from files in
//! the wild, so nothing here fails: a field that cannot be read is `None`, shown as "unknown".

use serde::{Deserialize, Serialize};

/// A UTC time as written in the file names (no time zone handling is needed: all are UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl Timestamp {
    /// Parses the digits of `YYYYMMDD[T]hhmm[ss]` (the `T`, seconds and a trailing `Z` optional).
    pub fn parse_compact(s: &str) -> Option<Timestamp> {
        let digits: String = s
            .trim_end_matches('Z')
            .chars()
            .filter(|c| *c != 'T')
            .collect();
        if !(digits.len() == 12 || digits.len() == 14)
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let n = |a: usize, b: usize| digits[a..b].parse::<u16>().ok();
        let t = Timestamp {
            year: n(0, 4)?,
            month: n(4, 6)? as u8,
            day: n(6, 8)? as u8,
            hour: n(8, 10)? as u8,
            minute: n(10, 12)? as u8,
            second: if digits.len() == 14 {
                n(12, 14)? as u8
            } else {
                0
            },
        };
        let plausible = (1990..=2100).contains(&t.year)
            && (1..=12).contains(&t.month)
            && (1..=31).contains(&t.day)
            && t.hour < 24
            && t.minute < 60
            && t.second < 61;
        plausible.then_some(t)
    }

    /// ISO 8601, e.g. `2019-04-12T10:30:15Z`.
    pub fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Metadata of one scene, from `original_id`, `scene_id`, `ice_service` and the file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SceneMeta {
    /// Short scene name as used in the upload package, e.g. `20190412T103015_dmi`.
    pub scene: String,
    /// Sentinel-1 unit: `S1A` or `S1B`.
    pub mission: Option<String>,
    /// Start of the SAR acquisition.
    pub acquired: Option<Timestamp>,
    /// `dmi` or `cis`.
    pub ice_service: Option<String>,
    /// Ice chart region (e.g. `SouthEast`, `SGRDIEA`).
    pub region: Option<String>,
    /// Time stamp of the ice chart.
    pub chart_time: Option<Timestamp>,
}

impl SceneMeta {
    /// Builds the metadata; every argument may be missing or odd.
    pub fn derive(
        file_name: &str,
        scene_id: Option<&str>,
        original_id: Option<&str>,
        ice_service_attr: Option<&str>,
    ) -> SceneMeta {
        let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
        let mut meta = SceneMeta {
            scene: short_name(scene_id.unwrap_or(base)),
            ..SceneMeta::default()
        };
        if let Some(orig) = original_id {
            meta.fill_from_original_id(orig);
        }
        // The RTT name `YYYYMMDDThhmmss_<svc>_prep.nc` still gives time and service.
        for name in [scene_id.unwrap_or(""), base] {
            let mut parts = name.split('_');
            let stamp = parts.next().unwrap_or("");
            if meta.acquired.is_none() && stamp.contains('T') {
                meta.acquired = Timestamp::parse_compact(stamp);
            }
            if meta.ice_service.is_none() {
                meta.ice_service = parts.next().and_then(service);
            }
        }
        if let Some(svc) = ice_service_attr.and_then(service) {
            meta.ice_service = Some(svc);
        }
        meta
    }

    /// The conditions a bare file name carries, for lists of names without the files (the
    /// dataset atlas): an original AI4Arctic name (`S1A_EW_GRDM_1SDH_<start>_<stop>_…_icechart_
    /// <service>_…`, §g.1) gives mission, time, service, region and chart time, and the
    /// ready-to-train name `<start>_<service>` it is known by; a ready-to-train name
    /// (`<start>_<service>_prep.nc`) gives time and service only. Folders are dropped.
    pub fn from_file_name(name: &str) -> SceneMeta {
        let base = name.trim();
        let base = base.rsplit(['/', '\\']).next().unwrap_or(base);
        let mut original = SceneMeta::default();
        original.fill_from_original_id(base);
        match (&original.mission, &original.ice_service) {
            (Some(_), Some(svc)) => {
                // The ready-to-train name is the start time as written, then the service (the
                // fork's notebooks cut it as [17:32] + "_" + [77:80]).
                let stamp = base.split('_').nth(4).unwrap_or_default();
                original.scene = format!("{stamp}_{svc}");
                original
            }
            _ => SceneMeta::derive(base, None, None, None),
        }
    }

    fn fill_from_original_id(&mut self, orig: &str) {
        let orig = orig.trim().trim_end_matches(".nc");
        let f: Vec<&str> = orig.split('_').collect();
        let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
        self.mission = get(0)
            .filter(|m| m.len() == 3 && m.starts_with("S1"))
            .map(str::to_string);
        self.acquired = get(4).and_then(Timestamp::parse_compact);
        let svc = get(10).and_then(service);
        match svc.as_deref() {
            Some("cis") => {
                self.region = get(11).map(str::to_string);
                self.chart_time = get(12).and_then(Timestamp::parse_compact);
            }
            Some("dmi") => {
                self.chart_time = get(11).and_then(Timestamp::parse_compact);
                self.region = get(12).map(str::to_string);
            }
            _ => {}
        }
        self.ice_service = svc;
    }

    /// Field value or "unknown", for tables.
    pub fn or_unknown(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("unknown")
    }
}

fn service(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    matches!(s.as_str(), "dmi" | "cis").then_some(s)
}

/// `20190412T103015_dmi_prep.nc` → `20190412T103015_dmi`; other names lose only `.nc`/`_prep`.
pub fn short_name(name: &str) -> String {
    let n = name.trim();
    let n = n.strip_suffix(".nc").unwrap_or(n);
    let n = n.strip_suffix("_prep").unwrap_or(n);
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmi_original_id() {
        let m = SceneMeta::derive(
            "x.nc",
            Some("20180325T194759_dmi_prep.nc"),
            Some("S1A_EW_GRDM_1SDH_20180325T194759_20180325T194859_021176_024676_449C_icechart_dmi_201803251945_SouthEast_RIC.nc"),
            Some("dmi"),
        );
        assert_eq!(m.scene, "20180325T194759_dmi");
        assert_eq!(m.mission.as_deref(), Some("S1A"));
        assert_eq!(m.acquired.unwrap().iso(), "2018-03-25T19:47:59Z");
        assert_eq!(m.region.as_deref(), Some("SouthEast"));
        assert_eq!(m.chart_time.unwrap().iso(), "2018-03-25T19:45:00Z");
        assert_eq!(m.ice_service.as_deref(), Some("dmi"));
    }

    #[test]
    fn cis_original_id() {
        let m = SceneMeta::derive(
            "20200117T211533_cis_prep.nc",
            None,
            Some("S1B_EW_GRDM_1SDH_20200117T211533_20200117T211559_017345_020A1B_3C2D_icechart_cis_SGRDIEA_20200117T2115Z_pl_a.nc"),
            None,
        );
        assert_eq!(m.mission.as_deref(), Some("S1B"));
        assert_eq!(m.region.as_deref(), Some("SGRDIEA"));
        assert_eq!(m.chart_time.unwrap().iso(), "2020-01-17T21:15:00Z");
        assert_eq!(m.ice_service.as_deref(), Some("cis"));
    }

    #[test]
    fn odd_names_degrade_to_unknown() {
        let m = SceneMeta::derive(
            "holiday photo.nc",
            Some(""),
            Some("garbage_without_fields"),
            None,
        );
        assert_eq!(m.mission, None);
        assert_eq!(m.acquired, None);
        assert_eq!(m.region, None);
        assert_eq!(SceneMeta::or_unknown(&m.region), "unknown");
        let m = SceneMeta::derive(
            "99999999T999999_xyz_prep.nc",
            None,
            Some("S1A_a_b_c_2019133"),
            None,
        );
        assert_eq!(m.acquired, None);
        assert_eq!(m.ice_service, None);
        assert_eq!(m.mission.as_deref(), Some("S1A"));
    }

    #[test]
    fn bare_file_names() {
        let m = SceneMeta::from_file_name("lists/S1B_EW_GRDM_1SDH_20200117T211533_20200117T211559_017345_020A1B_3C2D_icechart_cis_SGRDIEA_20200117T2115Z_pl_a.nc");
        assert_eq!(m.scene, "20200117T211533_cis");
        assert_eq!(m.mission.as_deref(), Some("S1B"));
        assert_eq!(m.region.as_deref(), Some("SGRDIEA"));
        assert_eq!(m.acquired.unwrap().hour, 21);
        let m = SceneMeta::from_file_name("20190412T103015_dmi_prep.nc");
        assert_eq!(m.scene, "20190412T103015_dmi");
        assert_eq!(m.ice_service.as_deref(), Some("dmi"));
        assert_eq!(m.mission, None);
        assert_eq!(m.acquired.unwrap().month, 4);
        let m = SceneMeta::from_file_name("notes.txt");
        assert_eq!((m.scene.as_str(), m.acquired), ("notes.txt", None));
    }

    #[test]
    fn file_name_fallback() {
        let m = SceneMeta::derive("/data/20211130T083012_dmi_prep.nc", None, None, None);
        assert_eq!(m.acquired.unwrap().iso(), "2021-11-30T08:30:12Z");
        assert_eq!(m.ice_service.as_deref(), Some("dmi"));
        assert_eq!(m.scene, "20211130T083012_dmi");
    }
}
