//! Records the git revision the binary is built from, for whatsapp_exporter_build_info.
use std::process::Command;

fn main() {
    let revision = std::env::var("WHATSAPP_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=WHATSAPP_EXPORTER_REVISION={revision}");
    println!("cargo:rerun-if-env-changed=WHATSAPP_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
