#!/usr/bin/env bash
# Makes sure Chromium is installed at /usr/bin/chromium, for the browser tests (playwright-core
# drives this system browser; no browser is ever downloaded), with a Korean font (Debian's
# fonts-nanum), so that the Korean pages' screenshots show text, not empty boxes. What is missing
# is installed from Debian's packages (as root, with apt-get), or the script fails naming it.
# When everything is there the script prints nothing.
set -euo pipefail

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/nanum ] || missing+=(fonts-nanum)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  say "${missing[*]} missing and cannot be installed here (needs root and apt-get): install the Debian packages ${missing[*]}"
  exit 1
fi
say "installing ${missing[*]} from Debian's packages (a few minutes)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ ! -x /usr/bin/chromium ]; then
  say "the Debian package chromium was installed but /usr/bin/chromium is still missing"
  exit 1
fi
