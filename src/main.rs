//! The `whatsapp-exporter` binary: everything lives in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    whatsapp_exporter::cli::main()
}
