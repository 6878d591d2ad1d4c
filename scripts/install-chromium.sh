#!/usr/bin/env bash
# Installs headless Chromium for nsqadmin's browser tests (nsqadmin/browser_test.go)
# when it is missing. Debian/Ubuntu only; needs root or sudo. CI runs it before
# the tests; on a developer machine without it the browser tests skip.
# Usage: ./scripts/install-chromium.sh
set -euo pipefail

for b in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "found $b: $("$b" --version 2>/dev/null || true)"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: apt-get not found; install Chromium with your package manager" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# fonts-liberation gives pages readable text in screenshots.
$sudo apt-get install -y -q --no-install-recommends chromium fonts-liberation
chromium --version
