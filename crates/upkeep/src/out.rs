//! Writing data to stdout without panicking when the reader goes away.
//!
//! `println!` panics on a closed pipe (`upkeep versions … | head`). Rust ignores SIGPIPE, and
//! restoring it needs `unsafe`, which this workspace forbids; so data is written through
//! these functions, which end the process quietly (exit 0) on a broken pipe, as `ls | head` does.
//!
//! Data is redacted ([`upkeep_core::redact`]) on its way out: tables and JSON quote source URLs,
//! repositories and servers' errors. Each call writes whole lines, so a URL is never split
//! between two calls. `upkeep crds` writes its schema verbatim ([`out_raw`]).

use std::io::{self, Write};

pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let text = args.to_string();
    write_bytes(upkeep_core::redact::redact(&text).as_bytes(), newline);
}

/// Writes `args` as they are: only for text upkeep generates itself and that must stay
/// byte-exact (the CRDs, which `kubectl apply` reads and a test compares with deploy/crds).
pub(crate) fn write_raw(args: std::fmt::Arguments<'_>, newline: bool) {
    write_bytes(args.to_string().as_bytes(), newline);
}

fn write_bytes(bytes: &[u8], newline: bool) {
    let mut out = io::stdout().lock();
    let result = out.write_all(bytes).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = result {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(2);
    }
}

/// `println!` for data on stdout.
macro_rules! outln {
    () => { $crate::out::write(format_args!(""), true) };
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), true) };
}

/// `print!` for data on stdout.
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), false) };
}

/// `print!` for text that must not be redacted (see [`write_raw`]).
macro_rules! out_raw {
    ($($t:tt)*) => { $crate::out::write_raw(format_args!($($t)*), false) };
}

pub(crate) use {out, out_raw, outln};

/// `--output`: text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Output {
    #[default]
    Text,
    Json,
}
