//! The `wippy-wasm` binary: the command line lives in [`wippy_wasm::cli`].

fn main() -> std::process::ExitCode {
    wippy_wasm::cli::main()
}
