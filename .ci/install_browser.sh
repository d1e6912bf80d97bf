#!/usr/bin/env bash
# Install Debian's chromium for tests/test_html_browser.py when it is missing (idempotent, quiet).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: no apt-get on this machine; the browser test will be skipped" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
echo "install_browser: $(/usr/bin/chromium --version 2>/dev/null)"
