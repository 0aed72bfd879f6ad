//! The icelens page: a thin Leptos shell over `icelens-core`.
//!
//! Built for wasm32 by Trunk (`index.html`). It also compiles natively so that
//! `cargo clippy --workspace` checks it, but only runs in a browser.

mod actions;
mod app;
mod browser;
mod components;
mod inference;
mod layers;
mod model;
mod package;
mod results;
mod state;
mod view;

// The module's static constructors (burn's GPU compiler registers its passes in some),
// synthesised by the wasm linker.
#[cfg(target_arch = "wasm32")]
extern "C" {
    fn __wasm_call_ctors();
}

fn main() {
    // Run the constructors once, here. Without an explicit call the linker treats the page
    // as a one-shot command and reruns every constructor at the start of each call from
    // JavaScript into wasm (every event handler, every frame): a millisecond or more each
    // with burn's registrations, most of the page's idle cost.
    #[cfg(target_arch = "wasm32")]
    // SAFETY: called once, first, before any code that relies on the constructors.
    unsafe {
        __wasm_call_ctors()
    };
    app::install_panic_hook();
    leptos::mount::mount_to_body(app::App);
}
