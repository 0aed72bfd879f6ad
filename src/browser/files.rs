//! Getting bytes into the page: dropped or picked files, and the bundled demo scene.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::js::js_err;

/// Largest file the page accepts. A real scene is 100-200 MB; its decoded arrays take about
/// 19 bytes a pixel on top, and wasm32 memory ends at 4 GB.
pub const MAX_FILE_BYTES: f64 = 600.0 * 1024.0 * 1024.0;

/// Reads the whole content of a user's file.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let name = file.name();
    if file.size() > MAX_FILE_BYTES {
        return Err(format!(
            "{name}: is {:.0} MB, more than the {:.0} MB this page can hold in memory",
            file.size() / 1e6,
            MAX_FILE_BYTES / 1e6
        ));
    }
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("{name}: cannot be read ({})", js_err(e)))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The first `n` bytes of a user's file (fewer when it is shorter), to tell what it is.
pub async fn read_head(file: &web_sys::File, n: f64) -> Result<Vec<u8>, String> {
    let name = file.name();
    let part = file
        .slice_with_f64_and_f64(0.0, n.min(file.size()))
        .map_err(|e| format!("{name}: cannot be read ({})", js_err(e)))?;
    let buffer = JsFuture::from(part.array_buffer())
        .await
        .map_err(|e| format!("{name}: cannot be read ({})", js_err(e)))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Fetches a file shipped with the app (same origin, works offline once cached).
pub async fn fetch_asset(url: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: cannot be fetched ({})", js_err(e)))?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let promise = response.array_buffer().map_err(js_err)?;
    let buffer = JsFuture::from(promise).await.map_err(js_err)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The files of a drop or of the file picker.
pub fn file_list(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Offers bytes as a file download (exports: CSV, JSON, models, pictures).
pub fn download(name: &str, mime: &str, bytes: &[u8]) {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("a").ok())
    {
        let _ = a.set_attribute("href", &url);
        let _ = a.set_attribute("download", name);
        if let Some(a) = a.dyn_ref::<web_sys::HtmlElement>() {
            a.click();
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}
