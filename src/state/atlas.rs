//! The dataset atlas's state: the training and test lists, the class pixel table, and the
//! atlas made of them (`icelens_core::dataset`); shared with the training panel, shown by
//! `components/atlas.rs`.

use std::sync::Arc;

use icelens_core::dataset::{parse_names, Atlas, ClassPixels};
use leptos::prelude::*;

use crate::browser::files::fetch_asset;

/// The lists and table shipped with the page.
const SHIPPED_TRAIN: &str = "assets/datasets/train_files.json";
const SHIPPED_TEST: &str = "assets/datasets/test_files.json";
const SHIPPED_PIXELS: &str = "assets/datasets/train_class_pixels.csv";

/// Names and where they came from (a file, a folder, the shipped lists).
pub type Names = Option<(String, Arc<Vec<String>>)>;

/// What the atlas is made of, and the atlas itself; shared with the training panel.
#[derive(Clone, Copy)]
pub struct AtlasState {
    pub train: RwSignal<Names>,
    pub test: RwSignal<Names>,
    pub pixels: RwSignal<Option<(String, Arc<ClassPixels>)>>,
    /// `None` until both lists are given.
    pub atlas: Memo<Option<Arc<Atlas>>>,
    /// Where the lists came from, for the training panel's wording.
    pub source: Memo<String>,
}

impl AtlasState {
    pub fn new() -> AtlasState {
        let train: RwSignal<Names> = RwSignal::new(None);
        let test: RwSignal<Names> = RwSignal::new(None);
        let pixels = RwSignal::new(None::<(String, Arc<ClassPixels>)>);
        let atlas = Memo::new(move |_| {
            let (train, test) = (train.get()?, test.get()?);
            Some(Arc::new(Atlas::new(
                &train.1,
                &test.1,
                pixels.get().as_ref().map(|(_, p)| p.as_ref()),
            )))
        });
        let source = Memo::new(move |_| match (train.get(), test.get()) {
            (Some(a), Some(b)) if a.0 == b.0 => a.0,
            (Some(a), Some(b)) => format!("{} and {}", a.0, b.0),
            _ => String::new(),
        });
        AtlasState {
            train,
            test,
            pixels,
            atlas,
            source,
        }
    }

    /// Loads the real dataset's lists and table shipped with the page.
    pub async fn load_shipped(self) -> Result<(), String> {
        let name = "AI4Arctic (shipped)";
        let train = parse_names(name, &fetch_asset(SHIPPED_TRAIN).await?);
        let test = parse_names(name, &fetch_asset(SHIPPED_TEST).await?);
        let pixels = ClassPixels::parse(name, &fetch_asset(SHIPPED_PIXELS).await?);
        let (train, test, pixels) = (
            train.map_err(|e| e.to_string())?,
            test.map_err(|e| e.to_string())?,
            pixels.map_err(|e| e.to_string())?,
        );
        self.train.set(Some((name.into(), Arc::new(train))));
        self.test.set(Some((name.into(), Arc::new(test))));
        self.pixels.set(Some((name.into(), Arc::new(pixels))));
        Ok(())
    }
}

impl Default for AtlasState {
    fn default() -> Self {
        Self::new()
    }
}
