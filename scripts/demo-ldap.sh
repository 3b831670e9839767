#!/usr/bin/env bash
# Starts the local demo LDAP directory for scripts/run.sh: a slapd from the Debian package (no
# system instance, nothing under /etc/ldap touched) with its data in ./demo/ldap, listening on
# 127.0.0.1:${SCIMSYNC_DEMO_LDAP_PORT:-3389}, suffix dc=example,dc=com, with the syncprov and
# accesslog overlays the bridge needs. Idempotent: a demo slapd that is already running is
# kept. Writes ./demo/scimsyncd.toml pointing the daemon at it.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SCIMSYNC_DEMO_LDAP_PORT:-3389}"
dir="$PWD/demo/ldap"
mkdir -p "$dir/data" "$dir/accesslog"
url="ldap://127.0.0.1:$port"
[ -f "$dir/admin.secret" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/admin.secret"; chmod 600 "$dir/admin.secret"; }
password="$(cat "$dir/admin.secret")"

if [ -f "$dir/slapd.pid" ] && kill -0 "$(cat "$dir/slapd.pid")" 2>/dev/null; then
  echo "demo LDAP already running at $url"
else
  hash="$(slappasswd -s "$password")"
  cat > "$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb.so
moduleload syncprov.so
moduleload accesslog.so
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
database mdb
suffix "cn=accesslog"
rootdn "cn=accesslog"
directory $dir/accesslog
maxsize 1073741824
index default eq
index entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN eq
access to * by dn.exact="cn=admin,dc=example,dc=com" read by * none
overlay syncprov
syncprov-nopresent TRUE
syncprov-reloadhint TRUE
database mdb
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw $hash
directory $dir/data
maxsize 1073741824
index objectClass eq
index entryCSN,entryUUID eq
index uid,cn,mail,member eq
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
overlay accesslog
logdb "cn=accesslog"
logops writes
logsuccess TRUE
logpurge 07+00:00 01+00:00
CONF
  /usr/sbin/slapd -f "$dir/slapd.conf" -h "$url" -s 0
  for _ in $(seq 1 200); do
    ldapwhoami -x -H "$url" -D cn=admin,dc=example,dc=com -w "$password" >/dev/null 2>&1 && break
    sleep 0.05
  done
  ldapwhoami -x -H "$url" -D cn=admin,dc=example,dc=com -w "$password" >/dev/null
  if ! ldapsearch -x -H "$url" -D cn=admin,dc=example,dc=com -w "$password" -b dc=example,dc=com -s base >/dev/null 2>&1; then
    ldapadd -x -H "$url" -D cn=admin,dc=example,dc=com -w "$password" >/dev/null <<LDIF
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: scimsync demo
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=disabled,dc=example,dc=com
objectClass: organizationalUnit
ou: disabled
LDIF
  fi
  # Devices and roles: also for demo directories made before they were mirrored.
  for ou in devices roles; do
    if ! ldapsearch -x -H "$url" -D cn=admin,dc=example,dc=com -w "$password" -b "ou=$ou,dc=example,dc=com" -s base >/dev/null 2>&1; then
      printf 'dn: ou=%s,dc=example,dc=com\nobjectClass: organizationalUnit\nou: %s\n' "$ou" "$ou" |
        ldapadd -x -H "$url" -D cn=admin,dc=example,dc=com -w "$password" >/dev/null
    fi
  done
  echo "demo LDAP started at $url (stop it with: kill \$(cat demo/ldap/slapd.pid))"
fi

cat > demo/scimsyncd.toml <<TOML
# Written by scripts/demo-ldap.sh: the demo daemon mirrors into the local demo slapd.
[ldap]
url = "$url"
bind_dn = "cn=admin,dc=example,dc=com"
bind_password_file = "$dir/admin.secret"
suffix = "dc=example,dc=com"

# A small service catalogue, so that scimsyncctl access grant has something to grant.
[access.services.dashboard]
description = "Operations dashboard"
roles = ["viewer", "admin"]

[access.services.store]
description = "Internal app store"
roles = ["member"]
TOML
