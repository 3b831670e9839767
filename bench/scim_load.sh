#!/usr/bin/env bash
# SCIM load benchmark (issue 3): requests/s and p50/p99 latency at 64 connections for the calls
# identity providers make, against a directory of USERS users and a group of MEMBERS members,
# next to GET /healthz on the same server (the HTTP layer with a trivial handler). Also the
# daemon's resident memory once it has rebuilt that directory.
#
#   bench/scim_load.sh            (USERS=1000000 MEMBERS=100000 SECONDS_PER_RUN=10 RUNS=3)
#   BUILD_DIR=build-x bench/scim_load.sh   runs the binaries of another build tree
#   LOADGEN=wrk bench/scim_load.sh         drives it with wrk and bench/wrk/*.lua instead of
#                                          bench/scim_loadgen (the same requests)
#
# Needs a built tree (scripts/build.sh), and wrk (installed here if missing) when LOADGEN=wrk.
# Prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS="${USERS:-1000000}"
MEMBERS="${MEMBERS:-100000}"
SECS="${SECONDS_PER_RUN:-10}"
RUNS="${RUNS:-3}"
BUILD="${BUILD_DIR:-build}"  # the build tree to run (default: the default preset's)
CONNS=64
LOADGEN="${LOADGEN:-scim_loadgen}"
case "$LOADGEN" in
  scim_loadgen) ;;
  wrk) command -v wrk >/dev/null ||
         { apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; } ;;
  *) echo "LOADGEN must be scim_loadgen or wrk, not \"$LOADGEN\"" >&2; exit 2 ;;
esac

tmp="$(mktemp -d /tmp/scim-load.XXXXXX)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

echo "preloading $USERS users and a group of $MEMBERS members ..."
"$BUILD/bench/scim_preload" "$tmp/data" "$USERS" "$MEMBERS" >/dev/null
# CONFIG_TOML: extra configuration, e.g. CONFIG_TOML=$'[log]\nsnapshot_every_events = 50000'
printf '%s\n' "${CONFIG_TOML:-}" >"$tmp/empty.toml"
start=$(date +%s.%N)
"$BUILD/daemon/scimsyncd" --config "$tmp/empty.toml" --data-dir "$tmp/data" --listen 127.0.0.1:0 \
  --admin-socket "$tmp/admin.sock" --durability batch >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 1 600); do grep -q "listening on" "$tmp/out" 2>/dev/null && break; sleep 0.5; done
url=$(sed -n 's/^listening on //p' "$tmp/out")
[ -n "$url" ] || { cat "$tmp/err"; exit 1; }
ready=$(echo "$(date +%s.%N) - $start" | bc)
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "scimsyncd rebuilt the directory and listened after ${ready}s; resident memory $((rss_kb / 1024)) MiB"

# A replay that long leaves a background snapshot being written (a forked child, niced): wait
# for it, so that every scenario, hello included, runs on a machine without it.
waited=0
while pgrep -P "$pid" >/dev/null && [ "$waited" -lt 600 ]; do sleep 1; waited=$((waited + 1)); done
[ "$waited" -gt 0 ] && echo "waited ${waited}s for the start-up snapshot to be written"
# The preload and the snapshot leave dirty pages: flush them now, so that the kernel's
# writeback does not share the disk with the daemon's fdatasync during the first runs.
sync

token=$("$BUILD/daemon/scimsyncctl" --socket "$tmp/admin.sock" token create --name bench --json |
        sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
export SCIM_TOKEN="$token" SCIM_USERS="$USERS" SCIM_MEMBERS="$MEMBERS" WRK_DIR="$PWD/bench/wrk"

# The daemon's CPU time (user + system) in clock ticks, from /proc: divided by the requests
# served it gives the daemon's CPU cost per request, which the load on the machine (wrk,
# compiles) disturbs far less than requests/s.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'; }

# One run of a scenario: "requests/s p50_ms p99_ms requests errors" (errors: non-2xx answers,
# and with scim_loadgen also failed and closed connections), or nothing (and the tool's output
# on stderr) if it gave no figures.
measure() {
  local scenario=$1 run=$2 out
  if [ "$LOADGEN" = wrk ]; then
    out=$(SCIM_RUN=$run wrk -t2 -c$CONNS -d"${SECS}s" --latency -s "bench/wrk/$scenario.lua" "$url")
    # (grep reads a here-string: `echo | grep -q` can fail under pipefail when grep exits first)
    if ! grep -q "Requests/sec" <<<"$out"; then echo "$out" >&2; return; fi
    echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
      "$(echo "$out" | awk '$1=="50%" {print $2}' | to_ms)" \
      "$(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)" \
      "$(echo "$out" | awk '/requests in/ {print $1}')" \
      "$(echo "$out" | awk '/Non-2xx/ {n=$5} END {print n+0}')"
  else
    if ! out=$("$BUILD/bench/scim_loadgen" --url "$url" --scenario "$scenario" --run "$run" \
                 --connections $CONNS --seconds "$SECS" --token "$SCIM_TOKEN" --users "$USERS" \
                 --members "$MEMBERS"); then
      echo "$out" >&2; return
    fi
    # Transport errors and connections the server closed count as errors too.
    echo "$out" | awk '{v[$1] = $2} END {print v["requests_per_second"], v["p50_ms"], v["p99_ms"],
                                             v["requests"],
                                             v["non_2xx"] + v["errors"] + v["connections_closed"]}'
  fi
}

hello_rps=""
echo "load generator: $LOADGEN, $CONNS connections, ${SECS}s per run, $RUNS runs per scenario"
printf '%-34s %12s %8s %9s %9s %12s %10s\n' "scenario" "req/s" "of hello" "p50 ms" "p99 ms" \
  "cpu us/req" "errors"
for scenario in ${SCENARIOS:-healthz get_user filter_user post_user patch_user add_member}; do
  rps=(); p50=(); p99=(); cpu=(); errs=0
  for run in $(seq 1 "$RUNS"); do
    before=$(cpu_ticks)
    fig=$(measure "$scenario" "$run")
    if [ -z "$fig" ]; then echo "$LOADGEN gave no figures for $scenario" >&2; continue; fi
    after=$(cpu_ticks)
    read -r r50 r99 n e <<<"$(echo "$fig" | cut -d' ' -f2-)"
    rps+=("$(echo "$fig" | cut -d' ' -f1)")
    p50+=("$r50")
    p99+=("$r99")
    cpu+=("$(awk -v t=$((after - before)) -v hz="$hz" -v n="$n" 'BEGIN {print 1e6 * t / hz / n}')")
    errs=$((errs + ${e:-0}))
  done
  [ "${#rps[@]}" -gt 0 ] || continue
  r=$(printf '%s\n' "${rps[@]}" | median)
  [ "$scenario" = healthz ] && hello_rps="$r"
  ratio=$(awk -v a="$r" -v b="$hello_rps" 'BEGIN {if (b > 0) printf "%.0f%%", 100*a/b; else print "-"}')
  printf '%-34s %12.0f %8s %9.2f %9.2f %12.1f %10s\n' "$scenario" "$r" "$ratio" \
    "$(printf '%s\n' "${p50[@]}" | median)" "$(printf '%s\n' "${p99[@]}" | median)" \
    "$(printf '%s\n' "${cpu[@]}" | median)" "$errs"
done
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "resident memory after the runs: $((rss_kb / 1024)) MiB"
# Snapshots the daemon wrote while the load ran (a forked child writes each; the daemon's
# pause is the fork).
grep 'snapshot of .* written' "$tmp/err" || echo "no snapshot was written during the runs"
