//! The `whatsapp-exporter` binary: everything lives in the library.
#![forbid(unsafe_code)]

// With thousands of targets polled, glibc's malloc took a third of the CPU in profiles
// (every poll allocates a request, a response and its parsed body on any worker thread),
// and its fragmentation kept resident memory well above what the data needs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    whatsapp_exporter::cli::main()
}
