//! Story files (JSON written by the page, shared between presenters): any bytes load as a
//! valid story or are refused with a message, and a story that loads saves and loads again.
#![no_main]

use icelens_core::story::{looks_like_story, Story};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_story(data);
    if let Ok(story) = Story::from_json("fuzz.json", data) {
        let again = Story::from_json("again.json", story.to_json().as_bytes())
            .expect("a story that loaded saves as a story that loads");
        assert_eq!(again.steps.len(), story.steps.len());
    }
});
