//! What reaches stdout. `-q` keeps back the lines that only say what was done ("published",
//! "unchanged", "imported"), so that cron mails nobody on success; what a command is run for
//! (a listing, a key, a config snippet, `--json`, failed checks) is always written. What needs
//! a human (unsatisfied dependencies, a Valid-Until about to pass) goes to stderr through the
//! reporter's warnings, whatever `-q` says.

use std::io::{self, Write};

#[derive(Clone, Copy, Debug)]
pub struct Printer {
    quiet: bool,
}

impl Printer {
    pub fn new(quiet: bool) -> Printer {
        Printer { quiet }
    }

    /// The printer for a command's lines: a quiet one when the command prints a JSON
    /// document instead (stdout holds that document alone).
    pub fn lines(self, json: bool) -> Printer {
        if json { Printer::new(true) } else { self }
    }

    /// For lines that say what was done: nothing under `-q`.
    pub fn status(self) -> Out {
        if self.quiet {
            Out::Nowhere
        } else {
            Out::Stdout(io::stdout())
        }
    }

    /// For what the command was asked for: always.
    pub fn output(self) -> Out {
        Out::Stdout(io::stdout())
    }

    /// One JSON document, always.
    pub fn json(self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let mut out = self.output();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }
}

pub enum Out {
    Stdout(io::Stdout),
    Nowhere,
}

impl Write for Out {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout(out) => out.write(bytes),
            Out::Nowhere => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout(out) => out.flush(),
            Out::Nowhere => Ok(()),
        }
    }
}
