#!/usr/bin/env bash
# Installs what building and testing mod_esf needs on Debian 12 / Ubuntu,
# skipping what is already there. Safe to run again.
#   apache2 apache2-dev   httpd itself, apxs and the httpd/APR headers
#   libclang-dev clang    bindgen reads the headers with libclang
#   postgresql            the database (the tests start their own cluster)
#   wrk python3           the benchmark load tools (../shared/bench)
#   curl                  the bring-up command's readiness check
#   gnuplot-nox           the capacity report's plot (bench/capacity.sh)
#   libapache2-mod-perl2 libdbd-pg-perl
#                         mod_perl beside mod_esf (t/mod_perl.rs, perl/)
#   chromium              the bring-up test looks at the store in a browser
set -euo pipefail

packages=(apache2 apache2-dev libclang-dev clang postgresql wrk python3 curl ca-certificates pkg-config gnuplot-nox
          libapache2-mod-perl2 libdbd-pg-perl chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian starts the packaged services; the project runs its own instances.
for svc in apache2 postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    echo "install-deps: note: the system $svc service is running; mod_esf uses its own instances on other ports"
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found. Install Rust 1.95 or newer (https://rustup.rs) and run this again." >&2
  exit 1
fi
