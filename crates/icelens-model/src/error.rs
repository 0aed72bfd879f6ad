//! What can go wrong in the model crate, typed, so that callers can tell a checkpoint that is
//! another network from settings that cannot work or a backend that failed, and handle each
//! once. The messages are whole sentences for the user; the CLI and the page prefix the file
//! they came from.

/// An error of building, running or training a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The state_dict is none of the networks icelens knows (no U-Net input block, a head
    /// missing, more levels or other input channels than the challenge's).
    #[error("{0}")]
    NotAUNet(String),
    /// It is a U-Net, but tensors are missing, of another shape or left unused: used whole
    /// or refused, so that a checkpoint never gives a silently wrong picture.
    #[error("does not fit a{} {network} with filters {filters:?}: {}", if network.starts_with("attention") { "n" } else { "" }, shown(problems))]
    DoesNotFit {
        network: String,
        filters: Vec<usize>,
        problems: Vec<String>,
    },
    /// A tensor the network needs is not in the state_dict.
    #[error("`{0}` is missing")]
    Missing(String),
    /// Settings that cannot work: filters, patch size, batch, steps.
    #[error("{0}")]
    Settings(String),
    /// What a run would learn from cannot be used: no charts, no patches, no such group.
    #[error("{0}")]
    Data(String),
    /// A window outside the scene.
    #[error(transparent)]
    Window(#[from] icelens_core::input::WindowError),
    /// The backend could not hand a result back.
    #[error("reading {what} back: {detail}")]
    Readback { what: &'static str, detail: String },
}

/// The first eight problems, and how many more there are.
fn shown(problems: &[String]) -> String {
    let mut s = problems
        .iter()
        .take(8)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > 8 {
        s += &format!("; and {} more", problems.len() - 8);
    }
    s
}

/// The CLI and the page report errors as text; `?` turns a typed error into it there.
impl From<ModelError> for String {
    fn from(e: ModelError) -> String {
        e.to_string()
    }
}

/// A backend's read-back failure.
pub(crate) fn readback<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> ModelError {
    move |e| ModelError::Readback {
        what,
        detail: format!("{e:?}"),
    }
}
