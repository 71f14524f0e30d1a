#!/usr/bin/env bash
# Debian's chromium for the stream test that drives a real browser's EventSource.
# Installed once, by `make test` (CI runs as root); a no-op when it is already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "chromium is missing and installing it needs root: sudo apt-get install chromium" >&2
  exit 1
fi
echo "installing Debian's chromium (once) for the browser stream test..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
