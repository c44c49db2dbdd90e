#!/usr/bin/env bash
# Builds mod_esf in release mode and installs it as DEST/mod_esf.so
# (default: httpd's module directory, `apxs -q LIBEXECDIR`).
#
# The file is copied under a temporary name and renamed over the old one:
# running children keep the old inode mapped, and the next
# `apachectl graceful` loads the new one. Never write a loaded .so in place.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-$(apxs -q LIBEXECDIR)}
cargo build --release -p mod_esf
mkdir -p "$dest"
tmp="$dest/.mod_esf.so.$$"
install -m 0644 target/release/libmod_esf.so "$tmp"
mv -f "$tmp" "$dest/mod_esf.so"
echo "installed $dest/mod_esf.so"
