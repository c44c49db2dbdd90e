#!/usr/bin/env bash
# Runs every test of mod_esf: the unit tests of each crate and the
# integration tests in t/, which boot a real httpd (prefork and event)
# loading the freshly built module and a real PostgreSQL cluster under
# target/. Installs what is missing first. This is the README's test command
# and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# target/ must be traversable by the httpd children (User www-data).
mkdir -p target && chmod o+x target
cargo build --workspace --all-targets
# t/bring_up.rs runs scripts/up.sh, which builds in release mode: build it
# here, before the tests run side by side.
cargo build --release -p mod_esf -p esf-cli -p esf-searchd
cargo test --workspace "$@"
