#!/usr/bin/env bash
# DNS benchmark: ccdir against NSD and Knot serving the same zone (exported
# by `ccdir export zone`), the same shuffled file of N CERT queries, on this
# machine's loopback, over UDP (EDNS large enough for the ~1.3 KB answers)
# and over TCP (persistent connections). Prints one table: queries per
# second, latency percentiles, and server CPU time per query (user+system
# from /proc/<pid>/stat over the run, all of the server's processes and
# threads) — the client shares the cores, so CPU per query is the fairer
# figure.
#
#   bash bench/dns.sh            # 100 000 names, 15 s per run
#   N=20000 SECONDS_PER_RUN=5 bash bench/dns.sh
#
# Needs: cargo, dnsperf, nsd, knotd, dig (Debian: dnsperf nsd knot dnsutils).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
RUN=${SECONDS_PER_RUN:-15}
CLIENTS=${CLIENTS:-4}
WORK=${WORK:-$(mktemp -d /tmp/ccdir-dnsbench.XXXXXX)}
ZONE=bench.example.org
P_CCDIR=${P_CCDIR:-25353}
P_API=${P_API:-28080}
P_NSD=${P_NSD:-25354}
P_KNOT=${P_KNOT:-25355}
TICKS=$(getconf CLK_TCK)

for tool in dnsperf nsd knotd dig; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dnsperf nsd knot dnsutils)"; exit 1; }
done

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== building (release) and generating $N entries in $WORK" >&2
cargo build --release -q --bin ccdir --example dns_bench_data
CCDIR=target/release/ccdir
if [ ! -f "$WORK/import.jsonl" ]; then
  target/release/examples/dns_bench_data "$N" "$WORK"
fi

cat > "$WORK/ccdir.toml" <<EOF
data_dir = "$WORK/data"
[api]
listen = "127.0.0.1:$P_API"
rate_limit_per_second = 100000
rate_limit_burst = 100000
[log]
filter = "warn"
[dns]
listen = "127.0.0.1:$P_CCDIR"
edns_udp_size = 4096
rrl_responses_per_second = 0
udp_threads = 2
zones_from_organisations = false
[[dns.zones]]
name = "$ZONE"
allow_transfer = ["127.0.0.1"]
[[dns.zones.hosts]]
name = "ns"
a = ["127.0.0.1"]
EOF

echo "== ccdir: load" >&2
$CCDIR -c "$WORK/ccdir.toml" init >/dev/null
$CCDIR -c "$WORK/ccdir.toml" serve > "$WORK/ccdir.out" 2>&1 &
CCDIR_PID=$!; pids+=("$CCDIR_PID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P_API/healthz" >/dev/null && break; sleep 0.2; done
TOKEN=$($CCDIR -c "$WORK/ccdir.toml" token issue --role node-admin)
curl -sf -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/x-pem-file' \
  --data-binary @"$WORK/anchor.pem" "http://127.0.0.1:$P_API/api/v1/anchors" >/dev/null
if [ ! -f "$WORK/imported" ]; then
  start=$(date +%s)
  $CCDIR -c "$WORK/ccdir.toml" import "$WORK/import.jsonl" >&2
  echo "import: $(( $(date +%s) - start )) s" >&2
  touch "$WORK/imported"
fi
# The server indexes what was imported; let it finish before measuring its CPU.
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$P_API/readyz" | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["indexed"] >= d["head"] else 1)' && break
  sleep 0.5
done
last=$(tail -n 1 "$WORK/queries.txt" | cut -d' ' -f1)
for _ in $(seq 300); do
  dig +short +tcp @127.0.0.1 -p "$P_CCDIR" "$last" CERT | grep -q PKIX && break; sleep 0.2
done
$CCDIR -c "$WORK/ccdir.toml" export zone "$ZONE" -o "$WORK/$ZONE.zone" 2>/dev/null
echo "zone: $(grep -c ' CERT ' "$WORK/$ZONE.zone") CERT records, $(du -h "$WORK/$ZONE.zone" | cut -f1)" >&2

echo "== NSD and Knot on the exported zone" >&2
mkdir -p "$WORK/nsd" "$WORK/knot"
cp "$WORK/$ZONE.zone" "$WORK/nsd/"; cp "$WORK/$ZONE.zone" "$WORK/knot/"
cat > "$WORK/nsd/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$P_NSD
    port: $P_NSD
    username: ""
    zonesdir: "$WORK/nsd"
    database: ""
    pidfile: "$WORK/nsd/nsd.pid"
    xfrdfile: "$WORK/nsd/xfrd.state"
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdir: "$WORK/nsd"
    logfile: "$WORK/nsd/nsd.log"
    ipv4-edns-size: 4096
    rrl-ratelimit: 0
    server-count: 2
    tcp-count: 1000
remote-control:
    control-enable: no
zone:
    name: $ZONE
    zonefile: "$WORK/nsd/$ZONE.zone"
EOF
nsd -d -c "$WORK/nsd/nsd.conf" &
NSD_PID=$!; pids+=("$NSD_PID")
cat > "$WORK/knot/knot.conf" <<EOF
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$P_KNOT
    udp-max-payload: 4096
    udp-workers: 2
    tcp-workers: 2
    background-workers: 1
database:
    storage: "$WORK/knot"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$WORK/knot"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: $ZONE
EOF
knotd -c "$WORK/knot/knot.conf" 2> "$WORK/knot/knot.log" &
KNOT_PID=$!; pids+=("$KNOT_PID")
for port in $P_NSD $P_KNOT; do
  for _ in $(seq 300); do
    dig +short +tcp @127.0.0.1 -p "$port" "$last" CERT | grep -q PKIX && break; sleep 0.2
  done
done
for port in $P_CCDIR $P_NSD $P_KNOT; do
  dig +bufsize=4096 @127.0.0.1 -p "$port" "$last" CERT | grep -q "ANSWER: 1," || { echo "port $port does not answer $last"; exit 1; }
done

# CPU ticks (user+system) of a process and all its descendants (NSD runs
# xfrd -> main -> server processes). /proc/<pid>/stat is read after the
# ")" closing the command name, which may hold spaces ("nsd: server 1"):
# utime and stime are then fields 12 and 13.
descendants() {
  local p
  echo "$1"
  for p in $(pgrep -P "$1" || true); do descendants "$p"; done
}
ticks() {
  local total=0 p t
  for p in $(descendants "$1"); do
    [ -r "/proc/$p/stat" ] || continue
    t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
    total=$(( total + t ))
  done
  echo "$total"
}

run() { # name pid port mode
  local name=$1 pid=$2 port=$3 mode=$4 before after out
  before=$(ticks "$pid")
  # LIMIT="-n 1": once through the query file instead of $RUN seconds.
  out=$(dnsperf -s 127.0.0.1 -p "$port" -m "$mode" -e -d "$WORK/queries.txt" ${LIMIT:--l "$RUN"} \
        -c "$CLIENTS" -T 1 -q 200 -v 2>/dev/null)
  after=$(ticks "$pid")
  echo "$out" > "$WORK/dnsperf.$name.$mode.log"
  local done qps resp
  done=$(echo "$out" | awk '/Queries completed:/ {print $3}')
  qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
  resp=$(echo "$out" | awk '/Average packet size:/ {print $NF}')
  # Verbose lines: "> NOERROR <name> CERT <latency seconds>"
  local pct
  pct=$(echo "$out" | awk '/^> / {print $NF}' | sort -g | awk '
    {v[NR]=$1} END {
      if (NR == 0) { print "- - -"; exit }
      printf "%.0f %.0f %.0f", v[int(NR*0.5)+0]*1e6, v[int(NR*0.9)+0]*1e6, v[int(NR*0.99)+0]*1e6 }')
  local cpu_us
  cpu_us=$(awk -v t=$(( after - before )) -v hz="$TICKS" -v n="$done" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
  set -- $pct
  printf "| %-6s | %-3s | %9.0f | %6s | %6s | %6s | %8s | %5s |\n" "$name" "$mode" "$qps" "$1" "$2" "$3" "$cpu_us" "$resp"
}

echo
echo "$N names, $RUN s per run, dnsperf -c $CLIENTS -q 200 -e, $(nproc) cores shared by client and servers"
echo
echo "| server | via | queries/s | p50 µs | p90 µs | p99 µs | CPU µs/q | resp B |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
# ccdir reads a name's certificates from its database the first time the
# name is asked for (then holds them, dns.certificate_cache_mb): one pass
# over every name first, measured on its own, then the timed runs.
LIMIT="-n 1" run "ccdir 1st pass" "$CCDIR_PID" "$P_CCDIR" udp
for mode in udp tcp; do
  run ccdir "$CCDIR_PID" "$P_CCDIR" "$mode"
  run nsd "$NSD_PID" "$P_NSD" "$mode"
  run knot "$KNOT_PID" "$P_KNOT" "$mode"
done
echo
echo "versions: $($CCDIR --version), $(nsd -v 2>&1 | head -1), $(knotd --version)"
