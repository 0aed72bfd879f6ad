//! The page's components: each shows part of the state (`crate::app::AppState` and the
//! signals it is given) and turns clicks into actions; the logic they show lives in the
//! core crates or in `crate::inference` / `crate::layers`.

pub mod atlas;
pub mod conditions;
pub mod panels;
pub mod story;
pub mod training;
pub mod upload;
pub mod viewer;
