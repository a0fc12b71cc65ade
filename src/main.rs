//! The `vggserve` binary: parses the command line and hands off to `commands`.

use clap::Parser;
use vggserve::commands::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line a user can act on; the chain says where it came from.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
