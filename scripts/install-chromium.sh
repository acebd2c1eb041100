#!/usr/bin/env bash
# Installs Debian's `chromium` (plus fonts for readable screenshots) for the browser tests in
# tests/browser/. Playwright drives this system browser through `executable_path`; the project never
# downloads a browser of its own (`playwright install` is not used and cannot work offline).
#
#   scripts/install-chromium.sh        # idempotent: quiet when everything is installed already
#
# Needs apt-get and root (or sudo). Prints the installed Chromium version on its last line.
# MINIAGENTS_NB_CHROMIUM=/path/to/chromium skips the install and uses that binary instead.
set -euo pipefail

PACKAGES=(chromium fonts-liberation fonts-dejavu-core)

die() {
  printf 'install-chromium.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

version_of() { # $1: chromium executable; the Debian wrapper's harmless /etc/chromium.d noise goes to /dev/null
  "$1" --version 2>/dev/null | head -n 1
}

if [[ -n "${MINIAGENTS_NB_CHROMIUM:-}" ]]; then
  [[ -x "$MINIAGENTS_NB_CHROMIUM" ]] || die "MINIAGENTS_NB_CHROMIUM=$MINIAGENTS_NB_CHROMIUM is not an executable file."
  version_of "$MINIAGENTS_NB_CHROMIUM"
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  command -v apt-get >/dev/null || die "apt-get not found: install Chromium by hand and set MINIAGENTS_NB_CHROMIUM."
  SUDO=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: run this script as root."
    SUDO=(sudo)
  fi
  echo "install-chromium.sh: installing ${missing[*]} with apt-get (about 30 s)..."
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
  if ! "${apt[@]}" update -qq >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get update failed (see above)."
  fi
  if ! "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get install ${missing[*]} failed (see above)."
  fi
fi

[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing after the install."
version="$(version_of /usr/bin/chromium)"
[[ -n "$version" ]] || die "/usr/bin/chromium --version printed nothing; the browser does not start."
echo "$version"
