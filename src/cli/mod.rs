//! The command line: flags ([`args`], checked by [`values`]), and one function per command
//! that opens what it needs and calls the library. `main.rs` parses and dispatches here.

/// `println!` that survives a closed stdout (`blockdrop eval … | head -4`): what no one reads
/// any more is dropped, and the command goes on to write its files and exit as it would.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod args;
mod commands;
pub(crate) mod compare;
mod open;
mod parts;
mod train;
mod train_args;
mod values;

use args::{Cli, Command, TrainCommand};
use blockdrop::process;

/// Whether the command runs the terminal app (its UI thread stays off the compute pool).
fn interactive(cli: &Cli) -> bool {
    matches!(cli.command, Some(Command::Tui(_))) || (cli.command.is_none() && cli.export.is_none())
}

/// Runs what `cli` asks for. Batch work runs on rayon's pool; the terminal app keeps its UI
/// thread off it and runs its worker there.
pub fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    let run = || match &cli.command {
        Some(Command::Eval(args)) => commands::eval(args),
        Some(Command::Import(args)) => commands::import(args),
        Some(Command::Tui(args)) => commands::tui(args),
        Some(Command::Profile(args)) => commands::profile(args),
        Some(Command::Export(args)) => commands::export(args),
        Some(Command::Compare(args)) => compare::compare(args),
        Some(Command::Runs(args)) => compare::runs(args),
        Some(Command::Merge(args)) => parts::merge(args),
        Some(Command::Train(TrainCommand::Base(args))) => train::base(args),
        Some(Command::Train(TrainCommand::Curriculum(args))) => train::curriculum(args),
        Some(Command::Train(TrainCommand::Finetune(args))) => train::finetune(args),
        None => match &cli.export {
            Some(dir) => commands::export_default(dir),
            None => commands::default_job(),
        },
    };
    if interactive(cli) {
        run()
    } else {
        process::on_pool(run)
    }
}

/// When the process started (first asked for at the top of `main`).
pub fn started() -> std::time::Instant {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}
