//! The `ccem` command line: a thin layer over the `ccem` library that owns all output,
//! progress bars and exit codes (one policy for every command: [`cli::EXIT_CODES`]).

mod cli;

use clap::FromArgMatches;

fn main() {
    let parsed = cli::command()
        .try_get_matches()
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let args = match parsed {
        Ok(a) => a,
        Err(e) => {
            // `--help` and `--version` exit 0; a usage error is an error like any other (1).
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let code = match cli::run(args) {
        Ok(()) => 0,
        // A closed pipe (`ccem theory ... | head`) is not an error worth reporting.
        Err(err) if cli::is_broken_pipe(&err) => 0,
        Err(err) => match err.downcast_ref::<cli::ExitStatus>() {
            Some(status) => {
                if !status.message.is_empty() {
                    eprintln!("{}", status.message);
                }
                status.code
            }
            None => {
                eprintln!("error: {err:#}");
                1
            }
        },
    };
    std::process::exit(code);
}
