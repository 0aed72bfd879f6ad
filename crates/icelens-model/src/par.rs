//! Work spread over the machine's cores natively, done in order in a browser worker.
//!
//! A whole scene's maps are hundreds of megabytes: the elementwise passes over them (pooling,
//! upsampling, argmax and softmax of the heads) would otherwise run on one core while the
//! other cores wait. wasm32 without shared memory has one thread, so there the same closures
//! run one after another.

/// Calls `f` on every item, on every core natively.
pub(crate) fn for_each<I: Send>(items: Vec<I>, f: impl Fn(I) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.into_par_iter().for_each(f);
    }
    #[cfg(target_arch = "wasm32")]
    items.into_iter().for_each(f);
}

/// `f` of every item, in the items' order, on every core natively.
pub(crate) fn map<I: Send, O: Send>(items: Vec<I>, f: impl Fn(I) -> O + Sync + Send) -> Vec<O> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.into_par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    items.into_iter().map(f).collect()
}
