//! Errors about a manifest, located: file, line, column, byte offset and field path.
//!
//! Two shapes on purpose. [`FieldError`] is what validation produces: a path into the object
//! (`spec.maintenanceWindows[0].recurrence`) and nothing about files, so the controller can use
//! it for a `Stalled` condition on an object that never was a file. [`Diagnostic`] is what the
//! loader produces once it has mapped that path back to where it was written.
//!
//! Messages quote the offending value, and a value may be a URL with a password or a
//! `?token=`: [`FieldError::new`] and [`FieldError::with_hint`] redact what they are given
//! ([`upkeep_core::redact`]), and a [`Diagnostic`] redacts its message and hint when shown.

use std::fmt;
use std::path::PathBuf;

use upkeep_core::redact::redact;

/// A validation error at a path inside one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Full path from the object root, e.g. `spec.maintenanceWindows[0].recurrence`.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        let message = message.into();
        FieldError {
            path: path.into(),
            message: redact(&message).into_owned(),
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: Option<impl Into<String>>) -> FieldError {
        self.hint = hint.map(|h| redact(&h.into()).into_owned());
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// A problem in a manifest file, located for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset into the text that was loaded (for rendering a snippet).
    pub offset: usize,
    /// The field path, when the problem is about one field.
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&redact(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {}", redact(hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Field errors in one line, each with its hint (status messages, CLI errors).
pub fn spec_message(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| match &e.hint {
            Some(h) => format!("{}: {} (hint: {h})", e.path, e.message),
            None => format!("{}: {}", e.path, e.message),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
