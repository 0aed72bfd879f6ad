//! Stories: a list of saved views of the page, stepped through in presentation mode.
//!
//! A story is a small JSON file that a presenter writes in the page (capture the view, add a
//! caption, reorder) and loads again later, so a demo runs the same every time. It names the
//! scene and model by name rather than holding them: the files themselves stay on the
//! presenter's machine. Everything read from a file is checked here, so the page can apply a
//! step without second-guessing its numbers.

use serde::{Deserialize, Serialize};

/// Format version written by this code; files of any other version are refused.
pub const VERSION: u32 = 1;
/// Largest story file accepted. A step is a few hundred bytes; this leaves room for thousands.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Most steps in a story: more than any talk shows, few enough to list in the page.
pub const MAX_STEPS: usize = 200;
/// Longest caption, in characters: a caption is read from the back of a room.
pub const MAX_CAPTION: usize = 500;
/// Longest title, scene, model, layer or panel name, in characters.
pub const MAX_NAME: usize = 200;
/// The SAR views a step can ask for (HH, HV, false colour), as the page's select names them.
pub const SAR_VIEWS: [&str; 3] = ["HH", "HV", "FC"];

/// A scene position: `x` is the sample, `y` the line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// One saved view of the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Shown in large type while presenting.
    #[serde(default)]
    pub caption: String,
    /// Scene name (`SceneMeta::scene`); `None` keeps whatever scene is shown.
    #[serde(default)]
    pub scene: Option<String>,
    /// Model name (its file name); `None` keeps the model shown.
    #[serde(default)]
    pub model: Option<String>,
    /// Layer key, as in the page's layer select (`none`, `pred-SIC`, `error-SOD`, ...).
    pub layer: String,
    /// Opacity of the layer over the SAR, in percent.
    pub opacity: u32,
    /// SAR view: `HH`, `HV` or `FC` (false colour).
    #[serde(default = "default_sar")]
    pub sar: String,
    /// Swipe divider position as a share of the picture's width; `None` when not comparing.
    #[serde(default)]
    pub swipe: Option<f64>,
    /// Screen pixels per scene pixel.
    pub zoom: f64,
    /// Scene position at the centre of the picture.
    pub center: Point,
    /// The side panel shown beside the picture: `legend`, `conditions`, `training`, ...
    /// Names the page does not know are kept and shown as the legend.
    #[serde(default = "default_panel")]
    pub panel: String,
}

fn default_sar() -> String {
    "HH".into()
}

fn default_panel() -> String {
    "legend".into()
}

/// A titled list of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Story {
    pub version: u32,
    #[serde(default)]
    pub title: String,
    pub steps: Vec<Step>,
}

impl Default for Story {
    fn default() -> Self {
        Story {
            version: VERSION,
            title: String::new(),
            steps: vec![],
        }
    }
}

/// Why a story file was refused; shows as `<file>: <reason>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct StoryError {
    pub file: String,
    pub reason: StoryProblem,
}

/// What is wrong with a story as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoryProblem {
    #[error("is {0} bytes, more than the {MAX_BYTES} a story may have")]
    TooLarge(usize),
    /// The JSON parser's message: where in the file, and what it expected.
    #[error("is not a valid icelens story ({0})")]
    NotAStory(String),
    #[error("has version {0}, this icelens reads version {VERSION}")]
    Version(u32),
    #[error("has {0} steps, more than the {MAX_STEPS} a story may have")]
    TooManySteps(usize),
    #[error("{0} is longer than {MAX_NAME} characters")]
    LongName(&'static str),
    /// `number` counts from 1, as the presenter counts steps.
    #[error("step {number}: {problem}")]
    Step { number: usize, problem: StepProblem },
}

/// What is wrong with one step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepProblem {
    #[error("caption is longer than {MAX_CAPTION} characters")]
    LongCaption,
    #[error("{0} is longer than {MAX_NAME} characters")]
    LongName(&'static str),
    #[error("opacity {0} is not within 0..=100")]
    Opacity(u32),
    #[error("SAR view {0:?} is not one of {views}", views = SAR_VIEWS.join(", "))]
    SarView(String),
    #[error("swipe {0} is not within 0..=1")]
    Swipe(f64),
    #[error("zoom {0} is not a positive number")]
    Zoom(f64),
    #[error("centre is not a finite position")]
    Centre,
}

/// Whether bytes look like a story rather than a scene or a model: a JSON object with a
/// `"steps"` key near its start. Used to dispatch files dropped on the page by content.
pub fn looks_like_story(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if start.map(|i| bytes[i]) != Some(b'{') {
        return false;
    }
    let head = &bytes[..bytes.len().min(MAX_BYTES)];
    head.windows(7).any(|w| w == b"\"steps\"")
}

impl Story {
    /// Reads and checks a story file; `name` is the file name errors mention.
    pub fn from_json(name: &str, bytes: &[u8]) -> Result<Story, StoryError> {
        let fail = |reason: StoryProblem| StoryError {
            file: name.to_string(),
            reason,
        };
        if bytes.len() > MAX_BYTES {
            return Err(fail(StoryProblem::TooLarge(bytes.len())));
        }
        let story: Story = serde_json::from_slice(bytes)
            .map_err(|e| fail(StoryProblem::NotAStory(e.to_string())))?;
        story.validate().map_err(fail)?;
        Ok(story)
    }

    /// The story as indented JSON, the format [`Story::from_json`] reads.
    pub fn to_json(&self) -> String {
        // Plain data with finite numbers: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every limit; the message names the step (counted from 1) at fault.
    pub fn validate(&self) -> Result<(), StoryProblem> {
        if self.version != VERSION {
            return Err(StoryProblem::Version(self.version));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(StoryProblem::TooManySteps(self.steps.len()));
        }
        if too_long(&self.title) {
            return Err(StoryProblem::LongName("title"));
        }
        for (i, step) in self.steps.iter().enumerate() {
            step.validate().map_err(|problem| StoryProblem::Step {
                number: i + 1,
                problem,
            })?;
        }
        Ok(())
    }

    /// Swaps step `i` with the one before it; false when there is none.
    pub fn move_up(&mut self, i: usize) -> bool {
        if i == 0 || i >= self.steps.len() {
            return false;
        }
        self.steps.swap(i - 1, i);
        true
    }

    /// Swaps step `i` with the one after it; false when there is none.
    pub fn move_down(&mut self, i: usize) -> bool {
        if i + 1 >= self.steps.len() {
            return false;
        }
        self.steps.swap(i, i + 1);
        true
    }

    /// Removes step `i`, if there is one.
    pub fn remove(&mut self, i: usize) -> Option<Step> {
        (i < self.steps.len()).then(|| self.steps.remove(i))
    }
}

fn too_long(name: &str) -> bool {
    name.chars().count() > MAX_NAME
}

impl Step {
    /// Checks one step's values: finite numbers in range and names of sane length.
    pub fn validate(&self) -> Result<(), StepProblem> {
        if self.caption.chars().count() > MAX_CAPTION {
            return Err(StepProblem::LongCaption);
        }
        for (what, s) in [
            ("scene", self.scene.as_deref()),
            ("model", self.model.as_deref()),
            ("layer", Some(self.layer.as_str())),
            ("panel", Some(self.panel.as_str())),
        ] {
            if too_long(s.unwrap_or("")) {
                return Err(StepProblem::LongName(what));
            }
        }
        if self.opacity > 100 {
            return Err(StepProblem::Opacity(self.opacity));
        }
        if !SAR_VIEWS.contains(&self.sar.as_str()) {
            return Err(StepProblem::SarView(self.sar.clone()));
        }
        if let Some(s) = self.swipe {
            if !(0.0..=1.0).contains(&s) {
                return Err(StepProblem::Swipe(s));
            }
        }
        if !(self.zoom.is_finite() && self.zoom > 0.0) {
            return Err(StepProblem::Zoom(self.zoom));
        }
        if !(self.center.x.is_finite() && self.center.y.is_finite()) {
            return Err(StepProblem::Centre);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(caption: &str) -> Step {
        Step {
            caption: caption.into(),
            scene: Some("20210315T101500_dmi".into()),
            model: Some("icelens-demo.bpk".into()),
            layer: "error-SOD".into(),
            opacity: 70,
            sar: "HV".into(),
            swipe: Some(0.25),
            zoom: 2.5,
            center: Point { x: 120.5, y: 80.25 },
            panel: "conditions".into(),
        }
    }

    fn story(n: usize) -> Story {
        Story {
            title: "talk".into(),
            steps: (0..n).map(|i| step(&format!("step {i}"))).collect(),
            ..Story::default()
        }
    }

    fn refused(json: &str) -> String {
        match Story::from_json("talk.json", json.as_bytes()) {
            Ok(s) => panic!("accepted {s:?}"),
            Err(e) => {
                assert_eq!(e.file, "talk.json");
                e.to_string()
            }
        }
    }

    /// The JSON of a one-step story with one field of the step replaced.
    fn with(field: &str, value: serde_json::Value) -> String {
        let mut v = serde_json::to_value(story(1)).unwrap();
        v["steps"][0][field] = value;
        v.to_string()
    }

    #[test]
    fn round_trip() {
        let s = story(3);
        let json = s.to_json();
        assert_eq!(Story::from_json("x.json", json.as_bytes()).unwrap(), s);
        assert!(looks_like_story(json.as_bytes()));
    }

    #[test]
    fn defaults_for_missing_fields() {
        let json = r#"{"version":1,"steps":[{"layer":"none","opacity":0,"zoom":1,"center":{"x":0,"y":0}}]}"#;
        let s = Story::from_json("x.json", json.as_bytes()).unwrap();
        let st = &s.steps[0];
        assert_eq!((st.sar.as_str(), st.panel.as_str()), ("HH", "legend"));
        assert_eq!((st.scene.clone(), st.swipe), (None, None));
    }

    #[test]
    fn refuses_what_is_not_a_story() {
        assert!(refused("not json").contains("not a valid icelens story"));
        assert!(refused("{\"steps\": 3}").starts_with("talk.json: "));
        assert!(refused(r#"{"version":2,"steps":[]}"#).contains("version 2"));
    }

    #[test]
    fn refuses_out_of_range_values() {
        assert!(refused(&with("opacity", 101.into())).contains("step 1: opacity 101"));
        assert!(refused(&with("swipe", 1.5.into())).contains("swipe 1.5"));
        assert!(refused(&with("swipe", (-0.1).into())).contains("swipe"));
        assert!(refused(&with("zoom", 0.into())).contains("zoom 0"));
        assert!(refused(&with("zoom", (-2).into())).contains("zoom"));
        assert!(refused(&with("sar", "VV".into())).contains("SAR view \"VV\""));
        assert!(refused(&with("caption", "x".repeat(MAX_CAPTION + 1).into())).contains("caption"));
        assert!(refused(&with("layer", "l".repeat(MAX_NAME + 1).into())).contains("layer"));
        // JSON has no NaN or infinity; an overflowing literal is refused by the parser.
        assert!(refused(&with("zoom", serde_json::Value::Null)).contains("not a valid"));
        let huge = with("zoom", 1.into()).replace("\"zoom\":1", "\"zoom\":1e999");
        refused(&huge);
    }

    #[test]
    fn refuses_non_finite_numbers_set_in_code() {
        let mut s = story(2);
        s.steps[1].center.x = f64::NAN;
        let e = s.validate().unwrap_err();
        assert_eq!(e.to_string(), "step 2: centre is not a finite position");
        assert_eq!(
            e,
            StoryProblem::Step {
                number: 2,
                problem: StepProblem::Centre
            }
        );
        s.steps[1].center.x = 0.0;
        s.steps[1].zoom = f64::INFINITY;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("step 2: zoom"));
    }

    #[test]
    fn limits_on_size_and_steps() {
        let s = story(MAX_STEPS);
        assert!(Story::from_json("x", s.to_json().as_bytes()).is_ok());
        let s = story(MAX_STEPS + 1);
        assert!(refused(&s.to_json()).contains("201 steps"));
        let mut big = story(1).to_json();
        big.push_str(&" ".repeat(MAX_BYTES));
        assert!(refused(&big).contains("more than the"));
    }

    #[test]
    fn sniffs_stories_by_content() {
        assert!(looks_like_story(b"  \n{\"version\": 1, \"steps\": []}"));
        assert!(!looks_like_story(b"{\"version\": 1}"));
        assert!(!looks_like_story(b"\x89HDF\r\n\x1a\n \"steps\""));
        assert!(!looks_like_story(b"CDF\x01"));
        assert!(!looks_like_story(b""));
    }

    #[test]
    fn the_bundled_story_is_valid() {
        let bytes = include_bytes!("../../../assets/demo/story.json");
        let s = Story::from_json("story.json", bytes).unwrap();
        assert!(looks_like_story(bytes));
        assert!(s.steps.len() >= 6);
        assert!(s.steps.iter().all(|st| !st.caption.is_empty()));
        assert!(s.steps.iter().any(|st| st.panel == "conditions"));
        assert!(s.steps.iter().any(|st| st.swipe.is_some()));
    }

    #[test]
    fn reorders_and_removes() {
        let mut s = story(3);
        assert!(!s.move_up(0));
        assert!(s.move_up(2));
        assert_eq!(s.steps[1].caption, "step 2");
        assert!(!s.move_down(2));
        assert!(s.move_down(0));
        assert_eq!(s.steps[0].caption, "step 2");
        assert!(!s.move_down(7) && !s.move_up(7));
        assert_eq!(s.remove(0).map(|st| st.caption), Some("step 2".into()));
        assert_eq!(s.remove(5), None);
        assert_eq!(s.steps.len(), 2);
    }
}
