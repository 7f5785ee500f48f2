#!/usr/bin/env bash
# LDAP benchmark: ccdir side by side with OpenLDAP slapd (back-mdb, Debian's
# package) loaded with the same entries and certificates, driven by the same
# load client (examples/ldap_load.rs) on loopback, one server at a time.
#
#   bench/ldap.sh [entries]        # default 100000; needs slapd and ldap-utils
#
# Environment: SECONDS_PER (default 15) per measurement, CONNS (default 8)
# client connections, BENCH_DIR to keep (and reuse) the data and databases,
# NO_BUILD=1 to use the binaries already in target/release as they are (for
# instance built from a clean `git archive` of a commit while the checkout
# is being edited), PIN=1 to run each server on core 0 and the load client on
# core 1 (taskset), so that the client's own CPU does not squeeze the
# servers' throughput on a 2-core machine; CLIENTS="ldap3 raw" (the default)
# the load clients to run (examples/ldap_load.rs: `ldap3` decodes every entry
# through the ldap3 crate, `raw` only frames the replies). Ports are free ones picked at run time. Prints one line per server and
# workload: throughput, latency p50/p99 and server CPU per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SECONDS_PER=${SECONDS_PER:-15}
CONNS=${CONNS:-8}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/ccdir-ldap-bench.XXXXXX)}
mkdir -p "$WORK"
for tool in slapd slapadd ldapsearch python3; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install slapd ldap-utils python3)" >&2; exit 1; }
done

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build -q --release --bin ccdir --example ldap_bench_data --example ldap_load
fi
BIN=target/release
SERVER_CPU=(); CLIENT_CPU=()
if [ "${PIN:-0}" = 1 ]; then SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ldap() { # url
  for _ in $(seq 1 600); do
    ldapsearch -x -H "$1" -b "" -s base namingContexts >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "no LDAP server at $1" >&2; exit 1
}

if [ ! -f "$WORK/data/done" ]; then
  echo "generating $N entries with certificates ..." >&2
  $BIN/examples/ldap_bench_data "$N" "$WORK/data"
  touch "$WORK/data/done"
fi

# ccdir: import once, then serve with the default limits.
if [ ! -f "$WORK/ccdir/imported" ]; then
  echo "importing into ccdir ..." >&2
  /usr/bin/time -f "ccdir import: %e s" $BIN/ccdir --data-dir "$WORK/ccdir" import "$WORK/data/ccdir.ldif" >/dev/null
  touch "$WORK/ccdir/imported"
fi
CPORT=$(free_port)
CCDIR_LDAP__LISTEN="127.0.0.1:$CPORT" CCDIR_API__LISTEN="127.0.0.1:0" \
  CCDIR_LDAP__LDAPS_LISTEN="127.0.0.1:0" CCDIR_DNS__LISTEN="127.0.0.1:0" RUST_LOG=warn \
  "${SERVER_CPU[@]}" $BIN/ccdir --data-dir "$WORK/ccdir" serve >"$WORK/ccdir.log" 2>&1 &
CCDIR_PID=$!

# slapd: back-mdb, equality index on mail, substring indexes on cn, sn, mail (and givenName).
mkdir -p "$WORK/slapd/db"
cat >"$WORK/slapd/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/slapd/slapd.pid
argsfile $WORK/slapd/slapd.args
loglevel 0
sizelimit 500
database mdb
maxsize 8589934592
suffix "dc=ccdir"
rootdn "cn=admin,dc=ccdir"
directory $WORK/slapd/db
index objectClass eq
index mail eq,sub
index cn,sn,givenName eq,sub
CONF
if [ ! -f "$WORK/slapd/loaded" ]; then
  echo "loading slapd ..." >&2
  /usr/bin/time -f "slapadd: %e s" slapadd -q -f "$WORK/slapd/slapd.conf" -l "$WORK/data/slapd.ldif"
  touch "$WORK/slapd/loaded"
fi
SPORT=$(free_port)
"${SERVER_CPU[@]}" slapd -f "$WORK/slapd/slapd.conf" -h "ldap://127.0.0.1:$SPORT/"
trap 'kill $CCDIR_PID 2>/dev/null; [ -f "$WORK/slapd/slapd.pid" ] && kill "$(cat "$WORK/slapd/slapd.pid")" 2>/dev/null; true' EXIT
wait_ldap "ldap://127.0.0.1:$CPORT"
wait_ldap "ldap://127.0.0.1:$SPORT"
SLAPD_PID=$(cat "$WORK/slapd/slapd.pid")

# The first start after a bulk import works in the background (it signs the
# node's federation log for every new entry); measure only once each server
# is idle (under 5 % of a core over 2 s), or the CPU per operation counts it.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
settle() { # pid name
  local hz a b t0=$SECONDS; hz=$(getconf CLK_TCK)
  for _ in $(seq 1 450); do
    a=$(cpu_ticks "$1"); sleep 2; b=$(cpu_ticks "$1")
    if [ $(( (b - a) * 100 / (2 * hz) )) -lt 5 ]; then
      echo "$2 idle after $((SECONDS - t0)) s" >&2; return 0
    fi
  done
  echo "$2 still busy after $((SECONDS - t0)) s; measuring anyway" >&2
}
settle "$CCDIR_PID" ccdir
settle "$SLAPD_PID" slapd

echo "entries: $N, connections: $CONNS, pinned: ${PIN:-0}, $SECONDS_PER s per run, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for client in ${CLIENTS:-ldap3 raw}; do
  for mode in mail thunderbird; do
    for server in ccdir slapd; do
      if [ $server = ccdir ]; then port=$CPORT; pid=$CCDIR_PID; else port=$SPORT; pid=$SLAPD_PID; fi
      # warm-up, not reported
      "${CLIENT_CPU[@]}" $BIN/examples/ldap_load --url "ldap://127.0.0.1:$port" --data "$WORK/data" --mode $mode \
        --connections "$CONNS" --seconds 3 --client "$client" >/dev/null
      "${CLIENT_CPU[@]}" $BIN/examples/ldap_load --url "ldap://127.0.0.1:$port" --data "$WORK/data" --mode $mode \
        --connections "$CONNS" --seconds "$SECONDS_PER" --server-pid "$pid" --label $server --client "$client"
    done
  done
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
