//! The configuration loader on arbitrary text.
//!
//! `target_files` globs are file system reads, not parsing: a fuzzed `/**` would walk the
//! whole machine, so texts whose top level has a `target_files` key are skipped. The path
//! points into a directory that does not exist, so nothing relative is read either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::config::Config;

fuzz_target!(|text: &str| {
    let names_files = serde_yaml::from_str::<serde_yaml::Value>(text)
        .is_ok_and(|v| v.get("target_files").is_some());
    if names_files {
        return;
    }
    let _ = Config::parse(text, Path::new("/nonexistent-fuzz-dir/config.yaml"));
});
