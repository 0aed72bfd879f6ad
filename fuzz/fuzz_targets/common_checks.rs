// Shared by the checkpoint targets (included with `include!`): what must hold of any state_dict
// a reader accepts, whatever bytes it came from.

/// Every accepted tensor fills its shape (the writers and the network assume it), and the
/// state_dict exports and loads again as icelens's own `.pt` (what `icelens convert` does).
fn check_accepted(sd: &icelens_core::checkpoint::StateDict) {
    for (k, t) in &sd.tensors {
        let n = t.shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
        assert_eq!(
            n,
            Some(t.data.len()),
            "tensor {k}: data does not fill its shape"
        );
    }
    let keys = sd.keys_in_order();
    assert_eq!(
        keys.len(),
        sd.tensors.len() + sd.integer_buffers.len(),
        "every key once in keys_in_order"
    );
    let pt = icelens_core::checkpoint::write_torch(sd, sd.epoch);
    let back = icelens_core::checkpoint::load_state_dict("again.pt", &pt)
        .expect("an exported .pt loads again");
    assert_eq!(back.tensors.len(), sd.tensors.len());
}
