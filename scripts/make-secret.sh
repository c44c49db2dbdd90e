#!/usr/bin/env bash
# Writes a random session secret to FILE (mode 0600) unless it exists.
# Every server of one site (app servers, front proxy) must share the file.
set -euo pipefail
file=${1:?usage: make-secret.sh FILE}
[ -s "$file" ] && exit 0
mkdir -p "$(dirname "$file")"
umask 077
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file"
echo >> "$file"
