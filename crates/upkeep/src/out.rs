//! Writing data to stdout without panicking when the reader goes away.
//!
//! `println!` panics on a closed pipe (`upkeep versions … | head`). Rust ignores SIGPIPE, and
//! restoring it needs `unsafe`, which this workspace forbids; so data is written through
//! these functions, which end the process quietly (exit 0) on a broken pipe, as `ls | head` does.

use std::io::{self, Write};

pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = io::stdout().lock();
    let result = out.write_fmt(args).and_then(|()| {
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

pub(crate) use {out, outln};
