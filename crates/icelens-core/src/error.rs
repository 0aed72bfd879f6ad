//! One error type for everything that can be wrong with a file a user gives us.
//!
//! Users drop files they did not write; the message must let them find the culprit without a
//! debugger, so it always names the file, the variable when there is one, and the problem, in
//! one sentence.

use std::fmt;

/// A scene or model file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file name as the user knows it.
    pub file: String,
    /// The netCDF variable concerned, if the problem is in one.
    pub variable: Option<String>,
    /// What is wrong, as a sentence fragment without a trailing full stop.
    pub problem: String,
}

impl FileError {
    pub fn file(file: &str, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            variable: None,
            problem: problem.into(),
        }
    }

    pub fn variable(file: &str, variable: &str, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            variable: Some(variable.to_string()),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variable {
            Some(v) => write!(f, "{}: variable `{}` {}", self.file, v, self.problem),
            None => write!(f, "{}: {}", self.file, self.problem),
        }
    }
}

impl std::error::Error for FileError {}
