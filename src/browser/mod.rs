//! Browser glue: files in and out, the Web Workers (scene decoding, checkpoint checks, CPU
//! inference), canvases, full screen, the URL fragment and access to JavaScript objects. Nothing here
//! decides anything; it moves bytes between the browser and the page's state.

pub mod cpu_worker;
pub mod decode;
pub mod files;
pub mod fragment;
pub mod js;
pub mod picture;
pub mod screen;
