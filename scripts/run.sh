#!/usr/bin/env bash
# Installs what is needed, builds, and starts scimsyncd in the foreground on the embedded
# default: a file log under ./demo/data, HTTP on 127.0.0.1:8080 (override with
# SCIMSYNC_LISTEN=HOST:PORT), the admin socket at ./demo/admin.sock. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh default
mkdir -p demo/data
listen="${SCIMSYNC_LISTEN:-127.0.0.1:8080}"
cat <<MSG
Starting scimsyncd. In another terminal:
  curl -s http://${listen}/healthz
  ./build/daemon/scimsyncctl --socket demo/admin.sock status
  ./build/daemon/scimsyncctl --data-dir demo/data log verify
MSG
exec ./build/daemon/scimsyncd --data-dir demo/data --listen "$listen" \
  --admin-socket demo/admin.sock
