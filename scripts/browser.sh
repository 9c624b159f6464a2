#!/usr/bin/env bash
# Install the headless browser the UI end-to-end tests drive (tests/harness/browser.py):
# Debian's chromium and chromium-driver, when /usr/bin/chromium or /usr/bin/chromedriver is missing.
# Idempotent; fails loudly when it cannot install them (no apt-get, not root, no package).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "browser: /usr/bin/chromium or /usr/bin/chromedriver missing; installing chromium and chromium-driver with apt-get..."
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: apt-get not found: install chromium and chromedriver at /usr/bin by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "browser: not root and no sudo: cannot install chromium and chromium-driver" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
for binary in /usr/bin/chromium /usr/bin/chromedriver; do
  if [ ! -x "$binary" ]; then
    echo "browser: $binary still missing after apt-get install" >&2
    exit 1
  fi
done
echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
