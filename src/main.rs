//! The `whatsapp-exporter` binary: everything lives in the library.
#![forbid(unsafe_code)]

// With thousands of targets polled, glibc's malloc took a third of the CPU in profiles:
// every poll allocates a request, a response and its parsed body across worker threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    whatsapp_exporter::cli::main()
}
