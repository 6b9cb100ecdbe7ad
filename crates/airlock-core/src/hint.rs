//! What the operator can do about an error, when we know. Every error type of this crate
//! implements [`Hint`]; a variant that wraps another error asks it, so no hint is lost on the
//! way up (a transparent wrapper hides the error it wraps from the `source()` chain, so only
//! it can pass the hint on). The binary asks each error of the chain once.

pub trait Hint {
    /// One sentence the operator can act on, or `None` when we know no fix.
    fn hint(&self) -> Option<&'static str>;
}
