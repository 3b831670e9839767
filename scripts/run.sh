#!/usr/bin/env bash
# Installs what is needed, builds, and starts scimsyncd in the foreground on the embedded
# default: a file log under ./demo/data, HTTP on 127.0.0.1:8080 (override with
# SCIMSYNC_LISTEN=HOST:PORT), the admin socket at ./demo/admin.sock, and a local demo LDAP
# directory (scripts/demo-ldap.sh: slapd on 127.0.0.1:3389, data in ./demo/ldap) that users
# and groups are mirrored into. Ctrl-C stops the daemon cleanly; the demo slapd keeps running.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh default
mkdir -p demo/data
./scripts/demo-ldap.sh
listen="${SCIMSYNC_LISTEN:-127.0.0.1:8080}"
cat <<MSG
Starting scimsyncd. In another terminal:
  curl -s http://${listen}/healthz
  ./build/daemon/scimsyncctl --socket demo/admin.sock token create --name demo
  ./build/daemon/scimsyncctl --socket demo/admin.sock ldap status
  ./build/daemon/scimsyncctl --socket demo/admin.sock access users
  ./build/daemon/scimsyncctl --socket demo/admin.sock access grant --group NAME --service dashboard --role viewer
  ldapsearch -x -H ldap://127.0.0.1:${SCIMSYNC_DEMO_LDAP_PORT:-3389} -D cn=admin,dc=example,dc=com \\
    -y demo/ldap/admin.secret -b ou=people,dc=example,dc=com
  ./build/daemon/scimsyncctl --data-dir demo/data log verify
MSG
exec ./build/daemon/scimsyncd --config demo/scimsyncd.toml --data-dir demo/data \
  --listen "$listen" --admin-socket demo/admin.sock
