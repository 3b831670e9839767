#!/usr/bin/env bash
# Installs everything scimsync needs to build, test and run on Debian 12 (bookworm).
# Idempotent and non-interactive; never leaves a system slapd running (the tests and the demo
# start their own throwaway slapd in a temp dir on a loopback port).
set -euo pipefail

packages=(
  cmake g++ make pkgconf
  libboost-dev            # Asio + Beast (HTTP server), Boost.CRC (portable CRC32C)
  nlohmann-json3-dev      # JSON: SCIM bodies, event data, admin protocol
  libssl-dev              # SHA-256 hash chain, token hashing, TLS for https connectors
  openssl ca-certificates # system CAs for https connectors; the tests make throwaway certificates
  libldap-dev             # OpenLDAP client for the directory bridge
  librdkafka-dev          # Kafka backend of the log (and its mock cluster for tests)
  libcli11-dev            # command-line parsing for scimsyncd and scimsyncctl
  libgoogle-perftools-dev # tcmalloc (minimal) for scimsyncd: faster small allocations
  libsystemd-dev          # sd_notify: Type=notify readiness, status and watchdog
  libtomlplusplus-dev     # configuration file (TOML, errors with line and column)
  catch2                  # unit and integration tests (v2, run by ctest)
  slapd ldap-utils        # real OpenLDAP server and clients for tests and the demo
  systemd                 # systemd-analyze: the unit file's verify and security tests
  dpkg-dev groff-base     # cpack's .deb: dpkg-shlibdeps works out Depends; groff checks man pages
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  # slapd: create no system database and start no system daemon.
  echo "slapd slapd/no_configuration boolean true" | "${sudo_cmd[@]}" debconf-set-selections
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
    trap '"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Belt and braces: if a packaged slapd was ever started, stop it; ours never use it.
if [ -x /etc/init.d/slapd ] && pgrep -x slapd >/dev/null 2>&1 && [ -f /run/slapd/slapd.pid ]; then
  /etc/init.d/slapd stop >/dev/null 2>&1 || true
fi
echo "setup: all build and test dependencies are installed"
