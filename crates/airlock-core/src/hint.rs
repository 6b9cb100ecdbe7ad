//! What the operator can do about an error, when we know. Every error type of this crate
//! implements [`Hint`]; a variant that wraps another error asks it, so no hint is lost on the
//! way up (a transparent wrapper hides the error it wraps from the `source()` chain, so only
//! it can pass the hint on). The binary asks each error of the chain once.
//!
//! Each error says only its own part and keeps the error it stems from as its source, so a
//! chain reads each cause once: [`Chain`] puts it on one line for logs and reports.

pub trait Hint {
    /// One sentence the operator can act on, or `None` when we know no fix.
    fn hint(&self) -> Option<&'static str>;
}

/// An error and its causes on one line, `what failed: why: why`, for logs and reports that
/// hold one line (each error of the chain says only its own part).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
