//! The `blockdrop` binary: parses the command line and dispatches to `cli`, then turns the
//! outcome into one line and an exit code (0 success, 1 runtime failure, 2 bad usage or input,
//! 75 a training run stopped by a signal with its state saved).

mod cli;

use std::process::ExitCode;

use clap::Parser;

use blockdrop::kernels::isa::Isa;
use blockdrop::process;
use cli::args::Cli;

/// Help and version print as clap writes them; a bad flag is one line naming it and what is
/// allowed (clap's own message, without its usage block), exit code 2.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    // clap's message up to its usage block, as one line: a missing argument's name is on the
    // line after "the following required arguments were not provided:".
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    let line = match message.join(" ") {
        joined if joined.is_empty() => "bad usage".to_string(),
        joined => joined,
    };
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    eprintln!("error: {line} (blockdrop --help lists what is allowed)");
    ExitCode::from(2)
}

/// An error message as one line of bounded length: names and text taken from files may hold
/// newlines (which would forge further lines) or run to megabytes.
fn one_line(message: &str) -> String {
    const MAX_CHARS: usize = 1000;
    let mut line = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MAX_CHARS {
            line.push_str(" […]");
            break;
        }
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// Exit code 2 for the user's input (bad flags, bad files), 75 for a training run stopped by a
/// signal with its state saved, 1 for anything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    let ours = || {
        error
            .chain()
            .filter_map(|e| e.downcast_ref::<blockdrop::Error>())
    };
    if ours().any(|e| matches!(e, blockdrop::Error::Stopped { .. })) {
        return blockdrop::error::EXIT_STOPPED;
    }
    if ours().any(blockdrop::Error::is_user_error) {
        2
    } else {
        1
    }
}

fn main() -> ExitCode {
    // A forced instruction-set path the CPU lacks is the user's error, refused before any
    // kernel runs.
    if let Err(message) = Isa::from_env() {
        eprintln!("error: {}", one_line(&message));
        return ExitCode::from(2);
    }
    process::tune();
    // A reader's panic on a corrupt file is that file's one-line error, not a trace.
    blockdrop::foreign_panic::install_hook();
    cli::started();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match cli::dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&format!("{error:#}")));
            ExitCode::from(exit_code(&error))
        }
    }
}
