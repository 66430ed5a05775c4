//! The `wippy-wasm` command line.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "wippy-wasm",
    version,
    about = "WebAssembly Component Model runtime on the wasmi interpreter"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Component Model `.wast` scripts; ends with `N passed, M failed`.
    Wast {
        /// Script files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Also list skipped directives.
        #[arg(long)]
        verbose: bool,
    },
    /// Print a component's imports and exports in WIT-like form.
    Inspect { file: std::path::PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wast { files, verbose } => wast(&files, verbose),
        Command::Inspect { file } => inspect(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn wast(files: &[std::path::PathBuf], verbose: bool) -> anyhow::Result<ExitCode> {
    let mut total = wippy_wasm::wast::Summary::default();
    for file in files {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                println!("FAIL {name}: cannot read: {e}");
                total.failed += 1;
                continue;
            }
        };
        let mut report = |line: String| {
            if verbose || line.starts_with("FAIL") {
                println!("{line}");
            }
        };
        match wippy_wasm::wast::run_script(&name, &text, &mut report) {
            Ok(s) => {
                println!(
                    "{name}: {} passed, {} failed, {} skipped",
                    s.passed, s.failed, s.skipped
                );
                total += s;
            }
            Err(e) => {
                println!("FAIL {name}: {e:#}");
                total.failed += 1;
            }
        }
    }
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn inspect(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let engine = wippy_wasm::Engine::default();
    let component = wippy_wasm::Component::from_file(&engine, file)?;
    print!("{}", wippy_wasm::inspect::describe(&component));
    Ok(ExitCode::SUCCESS)
}
