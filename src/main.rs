//! The `ocitree` command: argument parsing and output over the `ocitree` library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`ocitree ls … | head`) is not a failure for listings. (An archive
            // written to standard output reports a closed pipe as `Error::OutputClosed`, which
            // is one: the reader got a truncated archive.)
            let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(broken)
                    || matches!(c.downcast_ref::<ocitree::Error>(),
                        Some(ocitree::Error::Io { cause, .. }) if broken(cause))
            }) {
                return ExitCode::SUCCESS;
            }
            // Messages quote input (names, references, tar headers): no control character of
            // it reaches the terminal as it is.
            let text: String = format!("{e:#}")
                .chars()
                .flat_map(|c| match c {
                    '\n' | '\t' => vec![c],
                    c if c.is_control() => c.escape_default().collect(),
                    c => vec![c],
                })
                .collect();
            eprintln!("error: {text}");
            ExitCode::from(2)
        }
    }
}
