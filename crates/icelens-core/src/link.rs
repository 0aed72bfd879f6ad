//! The view in a link: the URL fragment `#scene=…&model=…&layer=…&zoom=…&x=…&y=…`, so that a
//! reload or a shared link shows the same thing once the same files are loaded. A subset of a
//! story step ([`Step`]): the page takes both from one snapshot of its view.
//!
//! Values are percent-encoded as `encodeURIComponent` does (scene and model names may hold
//! spaces or any Unicode); a fragment from elsewhere is read leniently: unknown keys, bad
//! numbers and broken escapes are ignored, never an error.

use crate::story::Step;

/// What the fragment holds; every part is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fragment {
    pub scene: Option<String>,
    pub model: Option<String>,
    pub layer: Option<String>,
    pub zoom: Option<f64>,
    /// Scene position (sample, line) at the centre of the view.
    pub center: Option<(f64, f64)>,
}

/// `encodeURIComponent`: UTF-8 bytes outside `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as `%XX`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for a broken escape or bytes that are not UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Fragment {
    /// The part of a step a link keeps.
    pub fn from_step(step: &Step) -> Fragment {
        Fragment {
            scene: step.scene.clone(),
            model: step.model.clone(),
            layer: Some(step.layer.clone()),
            zoom: Some(step.zoom),
            center: Some((step.center.x, step.center.y)),
        }
    }

    /// Parses `#k=v&…`; unknown keys, bad numbers and broken escapes are ignored.
    pub fn parse(hash: &str) -> Fragment {
        let mut f = Fragment::default();
        let (mut x, mut y) = (None, None);
        for pair in hash.trim_start_matches('#').split('&') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let Some(v) = decode(v) else { continue };
            let num = v.parse::<f64>().ok().filter(|n| n.is_finite());
            match k {
                "scene" => f.scene = Some(v),
                "model" => f.model = Some(v),
                "layer" => f.layer = Some(v),
                "zoom" => f.zoom = num.filter(|z| *z > 0.0),
                "x" => x = num,
                "y" => y = num,
                _ => {}
            }
        }
        if let (Some(x), Some(y)) = (x, y) {
            f.center = Some((x, y));
        }
        f
    }

    pub fn to_hash(&self) -> String {
        let mut parts = vec![];
        if let Some(s) = &self.scene {
            parts.push(format!("scene={}", encode(s)));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model={}", encode(m)));
        }
        if let Some(l) = &self.layer {
            parts.push(format!("layer={}", encode(l)));
        }
        if let Some(z) = self.zoom {
            parts.push(format!("zoom={z:.4}"));
        }
        if let Some((x, y)) = self.center {
            parts.push(format!("x={x:.1}&y={y:.1}"));
        }
        format!("#{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::Point;

    #[test]
    fn names_with_spaces_and_unicode_survive_a_link() {
        let f = Fragment {
            scene: Some("20190412T103015_dmi".into()),
            model: Some("pizza marinara (fine-tuned) é&=#.pt".into()),
            layer: Some("pred-SOD".into()),
            zoom: Some(1.5),
            center: Some((12.5, 300.0)),
        };
        let hash = f.to_hash();
        assert!(!hash[1..].contains(['#', ' ', 'é']), "{hash}");
        assert_eq!(hash.matches('&').count(), 5, "{hash}");
        assert_eq!(Fragment::parse(&hash), f);
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(decode("a%20b%2F%C3%A9").as_deref(), Some("a b/é"));
    }

    #[test]
    fn a_foreign_fragment_is_read_leniently() {
        let f = Fragment::parse("#zoom=-2&x=3&scene=a%2&model=%C3%28&layer=none&what=ever&y=nan");
        assert_eq!(f.zoom, None, "a zoom must be positive");
        assert_eq!(f.center, None, "y is not a number");
        assert_eq!((f.scene, f.model), (None, None), "broken escapes");
        assert_eq!(f.layer.as_deref(), Some("none"));
        assert_eq!(Fragment::parse(""), Fragment::default());
    }

    #[test]
    fn a_link_keeps_the_view_of_a_step() {
        let step = Step {
            caption: "c".into(),
            scene: Some("s".into()),
            model: None,
            layer: "error-SIC".into(),
            opacity: 40,
            sar: "HV".into(),
            swipe: Some(0.5),
            zoom: 2.0,
            center: Point { x: 1.0, y: 2.0 },
            panel: "legend".into(),
        };
        let f = Fragment::parse(&Fragment::from_step(&step).to_hash());
        assert_eq!(f.scene.as_deref(), Some("s"));
        assert_eq!(f.model, None);
        assert_eq!(f.layer.as_deref(), Some("error-SIC"));
        assert_eq!((f.zoom, f.center), (Some(2.0), Some((1.0, 2.0))));
    }
}
