//! The library's one error type. Every variant that comes from what a user handed us
//! (a path, a file's contents, a flag) is an *input* error: the binary maps it to exit code 2.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder the user named is missing, unreadable or malformed.
    #[error("{}: {problem}", path.display())]
    BadInput { path: PathBuf, problem: String },

    /// A flag or name the user gave does not fit (unknown config, bad threshold, …).
    #[error("{0}")]
    BadUsage(String),

    /// Reading or writing a file failed at the operating-system level.
    /// (Not a `#[source]`: the message already carries it, and error chains print once.)
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// Drawing or writing a report failed.
    #[error("report: {0}")]
    Report(String),

    /// The user stopped the work (the terminal app's Esc).
    #[error("cancelled")]
    Cancelled,

    /// A training run stopped on a signal after saving where it stood (the binary's exit code
    /// [`EXIT_STOPPED`]: a job script requeues the job, which continues with `--resume`).
    #[error(
        "stopped by a signal in epoch {epoch}, after {batches} of its batches; the state is saved: continue with `--resume {}`",
        dir.display()
    )]
    Stopped {
        dir: PathBuf,
        /// 1-based, as the progress lines count.
        epoch: usize,
        batches: usize,
    },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
}

impl Error {
    pub fn bad_input(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub fn io(path: impl AsRef<Path>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            error,
        }
    }

    /// True when the error is the user's input rather than a failure of ours (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::BadInput { .. } | Error::BadUsage(_) => true,
            // A path that does not exist or cannot be read is bad input too, and so is where
            // the user pointed us: a link loop, a name too long, a read-only or full disk.
            Error::Io { error, .. } => {
                matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::InvalidData
                ) || error.raw_os_error().is_some_and(is_environment_errno)
            }
            Error::Report(_)
            | Error::Cancelled
            | Error::Stopped { .. }
            | Error::Candle(_)
            | Error::Polars(_) => false,
        }
    }
}

/// The exit code of a run that stopped on a signal and saved its state: sysexits'
/// EX_TEMPFAIL, "try again later" (examples/slurm_train.sh requeues on it).
pub const EXIT_STOPPED: u8 = 75;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// OS errors that describe the paths and disks the user gave rather than a fault of ours.
fn is_environment_errno(code: i32) -> bool {
    [
        libc::ELOOP,
        libc::ENAMETOOLONG,
        libc::EROFS,
        libc::ENOSPC,
        libc::EDQUOT,
        libc::ENOTDIR,
        libc::EACCES,
        libc::EPERM,
        libc::EXDEV,
    ]
    .contains(&code)
}

/// `c`, or its escape when it is a control character (a newline, an ANSI escape): text a file
/// brings in can neither forge a line of output nor drive the terminal.
pub fn escaped(c: char) -> impl Iterator<Item = char> {
    let escape = c.is_control().then(|| c.escape_default());
    let plain = escape.is_none().then_some(c);
    escape.into_iter().flatten().chain(plain)
}

/// At most `max` characters of `text` as a message or metadata shows it: control characters
/// escaped, `…` when cut.
pub fn shown(text: &str, max: usize) -> String {
    let mut out: String = text.chars().flat_map(escaped).take(max + 1).collect();
    if out.chars().count() > max {
        out = out.chars().take(max).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod shown_tests {
    use super::shown;

    #[test]
    fn text_from_a_file_is_escaped_and_cut() {
        assert_eq!(shown("resnet32", 200), "resnet32");
        assert_eq!(shown("a\nb\u{1b}[31m", 200), "a\\nb\\u{1b}[31m");
        assert_eq!(shown("ééééé", 3), "ééé…");
    }
}
