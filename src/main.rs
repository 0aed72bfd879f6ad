//! The icelens page: a thin Leptos shell over `icelens-core`.
//!
//! Built for wasm32 by Trunk (`index.html`). It also compiles natively so that
//! `cargo clippy --workspace` checks it, but only runs in a browser.

mod app;
mod conditions;
mod decode;
mod files;
mod fragment;
mod inference;
mod layers;
mod panels;
mod picture;
mod story;
mod training;
mod viewer;

fn main() {
    app::install_panic_hook();
    leptos::mount::mount_to_body(app::App);
}
