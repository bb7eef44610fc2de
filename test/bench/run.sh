#!/usr/bin/env bash
# Whole-server throughput of hybridns against a reference server, reported as
# a ratio. See test/bench/README.md.
#
#   test/bench/run.sh auth      hybridns vs Knot, authoritative for bench.example.
#   test/bench/run.sh forward   hybridns vs Unbound, forwarding to a Knot upstream
#   test/bench/run.sh forward-miss  hybridns vs Unbound, every query a cache miss
#                               (a fresh name each, NXDOMAIN from the Knot upstream)
#   test/bench/run.sh zone-scale    hybridns vs Knot loading a 1,000,000-record zone
#                               file: seconds until the last record answers, and RSS
#   test/bench/run.sh auth-tcp  the same over TCP (dnsperf -m tcp)
#   test/bench/run.sh all       auth, auth-tcp, forward and forward-miss
#
# Environment:
#   BENCH_SECONDS      length of each measured dnsperf run (default 10)
#   BENCH_WARMUP       length of the warm-up run before it (default 2)
#   BENCH_ROUNDS       measure every server this many times, alternating;
#                      the ratio uses the median qps (default 1)
#   BENCH_OUTSTANDING  dnsperf -q (default 200; see the comment at DNSPERF_Q)
#   HYBRIDNS_BIN       hybridns binary to use instead of building ./cmd/hybridns
#   BENCH_QUIET_WAIT   wait up to this many seconds before each server's run
#                      for other processes to go quiet (default 60; 0 = don't)
#   BENCH_KEEP         if set, keep the temp dir (configs, logs, dnsperf output)
#   BENCH_RECORDS      zone-scale: records in the generated zone (default 1000000)
#   BENCH_SETTLE       zone-scale: seconds after the first answer before the
#                      settled RSS is read (default 5)
#
# Layout: the server under test is pinned to core 1 (taskset -c 1), dnsperf to
# core 0. Servers are measured one after the other, never two at once.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: test/bench/run.sh auth|auth-tcp|forward|forward-miss|zone-scale|all

  auth     hybridns vs Knot as authoritative servers for a generated
           10,000-name zone (bench.example.)
  forward  hybridns vs Unbound as caching forwarders to a Knot upstream,
           with a query set that is >= 99% cache hits after warm-up
  auth-tcp the same over TCP (dnsperf -m tcp)
  forward-miss
           hybridns vs Unbound as forwarders to a Knot upstream, every
           query a name never asked before (NXDOMAIN upstream): the miss path
  zone-scale
           hybridns vs Knot loading a generated 1,000,000-record zone file:
           seconds from start until the last record answers, and resident
           memory once loaded (servers not pinned, no load running)
  all      auth, auth-tcp, forward and forward-miss

environment: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_ROUNDS (1),
             BENCH_OUTSTANDING (200), BENCH_QUIET_WAIT (60),
             HYBRIDNS_BIN (default: build ./cmd/hybridns),
             BENCH_KEEP (keep the temp dir), BENCH_RECORDS (1000000),
             BENCH_SETTLE (5)
needs: go, dnsperf, dig, taskset, python3, knotd, knotc; unbound for forward
EOF
}

MODE=${1:-}
case "$MODE" in
auth | auth-tcp | forward | forward-miss | zone-scale | all) ;;
-h | --help | help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac
if [[ $# -gt 1 ]]; then
	usage >&2
	exit 2
fi

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
BENCH_OUTSTANDING=${BENCH_OUTSTANDING:-200}
BENCH_RECORDS=${BENCH_RECORDS:-1000000}
BENCH_SETTLE=${BENCH_SETTLE:-5}
for v in BENCH_SECONDS BENCH_WARMUP BENCH_ROUNDS BENCH_OUTSTANDING BENCH_QUIET_WAIT BENCH_RECORDS BENCH_SETTLE; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [[ $v != BENCH_QUIET_WAIT && ${!v} == 0 ]]; then
		echo "run.sh: $v must be a whole number (> 0, except BENCH_QUIET_WAIT), got '${!v}'" >&2
		exit 2
	fi
done

# dnsperf load: one thread (-T 1) and one client socket (-c 1) on core 0,
# at most DNSPERF_Q queries in flight (-q). dnsperf cannot have more than its
# one core here, so the window is the knob that decides how hard the server
# is pushed:
#  - small windows (50-100) leave both sides partly idle while packets and
#    wake-ups cross between the cores: a latency limit, not a server limit;
#  - large windows (400-500) overflow the server's default 208 KiB UDP
#    receive buffer (~300 queries) in dnsperf's first burst: Knot loses
#    ~400 / ~900 queries at -q 400 / 500, each lost query then holds its
#    slot until the timeout, and "lost" measures the buffer, not the server;
#  - 200 keeps a queue in the server's socket (it reads batches, as under
#    real load) with no systematic losses.
# More clients or threads only add dnsperf work on its one core. One dnsperf
# thread tops out near 100-120k qps on this machine, which Knot, Unbound and
# hybridns all reach with a core to spare: the table's CPU columns show who
# was saturated, and qps per server CPU-second compares servers that dnsperf
# could not saturate.
DNSPERF_Q=$BENCH_OUTSTANDING
DNSPERF_TIMEOUT=2 # seconds; a lost query holds a window slot this long
SERVER_CPU=1
CLIENT_CPU=0
ORIGIN=bench.example.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

need() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "run.sh: missing tools: ${missing[*]}" >&2
		exit 1
	fi
}
need go dnsperf dig taskset python3 knotd knotc awk
if [[ $MODE == forward* || $MODE == all ]]; then need unbound unbound-checkconf; fi
if ! taskset -c "$SERVER_CPU" true 2>/dev/null || ! taskset -c "$CLIENT_CPU" true 2>/dev/null; then
	echo "run.sh: cannot pin to cores $CLIENT_CPU and $SERVER_CPU (needs 2 cores)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hybridns-bench.XXXXXX")
PIDS=()

# forget_pid PID: drop a reaped child from PIDS (so a recycled pid is never
# signalled by the cleanup).
forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# proc_state PID: the process's state letter (R, S, Z, ...), or nothing.
proc_state() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	echo "${stat%% *}"
}

# stop_pid PID: SIGTERM, wait up to 5 s, then SIGKILL; reap it.
stop_pid() {
	local pid=$1 i
	if kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			[[ $(proc_state "$pid") != Z ]] || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	forget_pid "$pid"
}

cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	wait 2>/dev/null || true
	if [[ -n ${BENCH_KEEP:-} ]]; then
		echo "run.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '== %s\n' "$*" >&2; }
die() {
	printf 'run.sh: %s\n' "$*" >&2
	exit 1
}

# free_port: set FREE_PORT to a port free for both UDP and TCP on 127.0.0.1, outside the
# kernel's ephemeral range (so dnsperf's or a forwarder's source ports cannot
# take it between now and the server's bind), and not handed out before.
USED_PORTS=()
FREE_PORT=
free_port() {
	local p
	p=$(python3 - "${USED_PORTS[@]}" <<'EOF'
import random, socket, sys
used = {int(a) for a in sys.argv[1:]}
lo, hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
cands = [p for p in range(10000, 30000) if not lo <= p <= hi and p not in used]
random.shuffle(cands)
for p in cands:
    socks = []
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    sys.exit(0)
sys.exit("no free port")
EOF
	) || die "cannot find a free port"
	USED_PORTS+=("$p")
	FREE_PORT=$p
}

CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks PID: user+system clock ticks of all the process's threads so far.
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	# Fields after the parenthesised command name; utime, stime are 14, 15.
	awk '{print $12 + $13}' <<<"${stat##*) }"
}

# busy_ticks: clock ticks all cores spent running processes (user, nice,
# system), from /proc/stat; irq/softirq/steal are left out.
busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat
}

# wait_quiet: on a shared machine, wait (up to BENCH_QUIET_WAIT seconds) for
# other processes to use less than 20% of a core over a 1 s sample, so the
# measured run is not competing with someone's build. Gives up with a note;
# the "other" column and the warning below the table still tell.
wait_quiet() {
	local deadline=$((SECONDS + BENCH_QUIET_WAIT)) b0 b1 pct said=
	while :; do
		b0=$(busy_ticks)
		sleep 1
		b1=$(busy_ticks)
		pct=$(((b1 - b0) * 100 / CLK_TCK))
		[[ $pct -lt 20 ]] && return 0
		if ((SECONDS >= deadline)); then
			log "machine still busy (${pct}% of a core used by others); measuring anyway"
			return 0
		fi
		[[ -n $said ]] || log "machine busy (${pct}% of a core used by others); waiting up to ${BENCH_QUIET_WAIT}s"
		said=1
	done
}

# ---------------------------------------------------------------------------
# Servers. Each start_* runs one server in the background pinned to a core,
# records its pid in PIDS and sets SERVER_PID.

SERVER_PID=
# spawn LOG CPU CMD...: start CMD pinned to CPU, output to LOG.
spawn() {
	local logf=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >"$logf" 2>&1 </dev/null &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
}

# knot_conf DIR PORT ZONEDIR [WORKERS]: write DIR/knot.conf for one zone.
# WORKERS "default" leaves Knot's thread counts at its defaults (zone-scale,
# where no query load runs and every server may use every core).
knot_conf() {
	local dir=$1 port=$2 zonedir=$3 workers=${4:-1} threads=
	mkdir -p "$dir/run" "$dir/db"
	if [[ $workers != default ]]; then
		threads="    background-workers: $workers
    udp-workers: $workers
    tcp-workers: $workers"
	fi
	cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir/run"
    # Root here; stay root (the default would need a 'knot' user).
    user: root:root
    listen: 127.0.0.1@$port
$threads
database:
    storage: "$dir/db"
control:
    listen: "$dir/run/knot.sock"
log:
  - target: stderr
    any: notice
template:
  - id: default
    storage: "$zonedir"
    file: "%s.zone"
    # Serve the file as is: no journal, never write the file back.
    zonefile-load: whole
    journal-content: none
    zonefile-sync: -1
    # Counters for 'knotc stats' (upstream query count in forward mode).
    global-module: mod-stats
zone:
  - domain: $ORIGIN
EOF
}

start_knot() { # DIR PORT ZONEDIR CPU
	knot_conf "$1" "$2" "$3"
	spawn "$1/log" "$4" knotd -c "$1/knot.conf"
}

knot_queries() { # DIR: queries the Knot in DIR has answered so far
	knotc -c "$1/knot.conf" stats mod-stats.server-operation 2>/dev/null |
		awk -F' = ' '/server-operation\[query\]/ {print $2; found=1} END {if (!found) print "?"}'
}

start_unbound() { # DIR PORT UPSTREAM_PORT CPU
	local dir=$1
	mkdir -p "$dir"
	cat >"$dir/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: $2
    do-ip6: no
    num-threads: 1
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$dir"
    pidfile: "$dir/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # No trust anchor and iterator only: no DNSSEC validation.
    module-config: "iterator"
    qname-minimisation: no
    prefetch: no
    # Ample caches: the working set is ~5,000 answers.
    msg-cache-size: 128m
    rrset-cache-size: 256m
    key-cache-size: 8m
    neg-cache-size: 16m
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$3
EOF
	unbound-checkconf "$dir/unbound.conf" >/dev/null 2>&1 ||
		die "unbound rejects $dir/unbound.conf: $(unbound-checkconf "$dir/unbound.conf" 2>&1)"
	spawn "$dir/log" "$4" unbound -d -c "$dir/unbound.conf"
}

HYBRIDNS=
build_hybridns() {
	if [[ -n ${HYBRIDNS_BIN:-} ]]; then
		[[ -x $HYBRIDNS_BIN ]] || die "HYBRIDNS_BIN=$HYBRIDNS_BIN is not executable"
		HYBRIDNS=$HYBRIDNS_BIN
		return
	fi
	log "building ./cmd/hybridns"
	(cd "$REPO" && go build -o "$TMP/hybridns" ./cmd/hybridns) ||
		die "go build ./cmd/hybridns failed (set HYBRIDNS_BIN to use a built binary)"
	HYBRIDNS=$TMP/hybridns
}

# hybridns is pinned to one core, so GOMAXPROCS=1: the Go runtime would pick
# 1 from the affinity mask anyway, but saying so makes the setting explicit
# and independent of how the pinning is done (cgroup quotas, a later taskset)
# — more Ps than cores only adds scheduler and GC-worker contention — and
# matches the one-worker configuration of Knot and Unbound.
start_hybridns_auth() { # DIR PORT ZONEDIR CPU
	mkdir -p "$1"
	spawn "$1/log" "$4" env GOMAXPROCS=1 "$HYBRIDNS" serve --http-listen off --listen "127.0.0.1:$2" --zone-dir "$3"
}
start_hybridns_forward() { # DIR PORT UPSTREAM_PORT CPU
	mkdir -p "$1"
	spawn "$1/log" "$4" env GOMAXPROCS=1 "$HYBRIDNS" serve --http-listen off --listen "127.0.0.1:$2" \
		--forward-default "127.0.0.1:$3" --allow-recursion 127.0.0.0/8
}

# wait_ready NAME PID PORT LOG CPU: wait until the server answers the apex SOA
# with NOERROR, then pin all its threads to CPU.
wait_ready() {
	local name=$1 pid=$2 port=$3 logf=$4 cpu=$5 i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run.sh: $name exited during start-up; last lines of its log:" >&2
			tail -n 20 "$logf" >&2 || true
			return 1
		fi
		# Ready = the apex SOA answers NOERROR (not a SERVFAIL while loading).
		if dig +time=1 +tries=1 -p "$port" @127.0.0.1 "$ORIGIN" SOA 2>/dev/null | grep -q 'status: NOERROR'; then
			# Servers that pin their own threads (Knot's UDP workers pin to
			# CPU i) must not leave the core they were given.
			taskset -a -p -c "$cpu" "$pid" >/dev/null 2>&1 || true
			return 0
		fi
		sleep 0.2
	done
	echo "run.sh: $name did not answer on 127.0.0.1:$port within 20 s; last lines of its log:" >&2
	tail -n 20 "$logf" >&2 || true
	return 1
}

# sanity NAME PORT CHECKS FLAG: dig every "name TYPE RCODE" line of CHECKS;
# NOERROR needs an answer, and every reply needs header flag FLAG (aa for an
# authoritative server, ra for a forwarder). Prints what failed.
sanity() {
	local name=$1 port=$2 checks=$3 flag=$4 qname qtype want out status nans flags bad=0
	while read -r qname qtype want; do
		out=$(dig +time=2 +tries=2 -p "$port" @127.0.0.1 "$qname" "$qtype" 2>&1 </dev/null) || true
		status=$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out")
		nans=$(sed -n 's/.* ANSWER: \([0-9]*\),.*/\1/p' <<<"$out")
		flags=$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out")
		if [[ -z $status ]]; then
			echo "  $name: $qname $qtype: no answer: $(tail -n 3 <<<"$out")" >&2
			bad=1
		elif [[ $status != "$want" ]]; then
			echo "  $name: $qname $qtype: $status, want $want" >&2
			bad=1
		elif [[ $want == NOERROR && ${nans:-0} -lt 1 ]]; then
			echo "  $name: $qname $qtype: NOERROR with an empty answer section" >&2
			bad=1
		elif [[ " $flags " != *" $flag "* ]]; then
			echo "  $name: $qname $qtype: flag $flag not set (flags: $flags)" >&2
			bad=1
		fi
	done <"$checks"
	return "$bad"
}

# ---------------------------------------------------------------------------
# Measurement.

RESULTS=() # "mode|server|round|qps|lost|rcodes|srvcpu|clicpu|othercpu|extra"

# children_cpu: set CHILD_CPU to the CPU seconds (user + system) of all the
# children this shell has reaped so far. Call it directly, never as $(...):
# 'times' must run in this shell, a subshell reports its own, empty, children.
CHILD_CPU=
children_cpu() {
	times >"$TMP/times"
	CHILD_CPU=$(awk 'END {
		for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += 60 * t[1] + t[2] }
		printf "%.3f\n", s }' "$TMP/times")
}

# dnsperf_run OUT SECONDS PORT QUERIES: one dnsperf run pinned to the client
# core; sets DNSPERF_CPU to its CPU use in % of one core. dnsperf runs in the
# background and is waited for so that a signal to this script is handled at
# once (bash defers traps until a foreground command ends), and the cleanup
# stops dnsperf too.
DNSPERF_CPU=
dnsperf_run() {
	local out=$1 secs=$2 port=$3 queries=$4 pid rc=0 c0 c1 w0 w1
	children_cpu
	c0=$CHILD_CPU
	w0=$(date +%s.%N)
	taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$queries" \
		-l "$secs" -c 1 -T 1 -q "$DNSPERF_Q" -t "$DNSPERF_TIMEOUT" ${DNSPERF_EXTRA:-} >"$out" 2>&1 </dev/null &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget_pid "$pid"
	w1=$(date +%s.%N)
	children_cpu
	c1=$CHILD_CPU
	if [[ $rc -ne 0 ]]; then
		echo "run.sh: dnsperf failed (exit $rc):" >&2
		cat "$out" >&2
		return 1
	fi
	DNSPERF_CPU=$(awk -v a="$c0" -v b="$c1" -v w0="$w0" -v w1="$w1" 'BEGIN { printf "%.0f", 100 * (b - a) / (w1 - w0) }')
}

# measure MODE NAME PID PORT QUERIES DIR [UPSTREAM_KNOT_DIR]: warm-up, then a
# measured run; appends a line to RESULTS.
measure() {
	local mode=$1 name=$2 pid=$3 port=$4 queries=$5 dir=$6 updir=${7:-} round=$8
	local out="$dir/dnsperf.$round.out" t0 t1 w0 w1 b0 b1 clicpu srvcpu othercpu respsize qps lost rcodes extra="" upw up0 up1 completed
	wait_quiet
	local wq=$queries mq=$queries
	if [[ -n ${QUERY_FILE_FN:-} ]]; then
		# Fresh names for this server, round and phase (forward-miss).
		wq=$("$QUERY_FILE_FN" "$dir" "$name" "$round" warmup "$BENCH_WARMUP")
		mq=$("$QUERY_FILE_FN" "$dir" "$name" "$round" measured "$BENCH_SECONDS")
	fi
	log "$name: warm-up ${BENCH_WARMUP}s"
	if [[ -n $updir ]]; then upw=$(knot_queries "$updir"); fi
	dnsperf_run "$dir/warmup.$round.out" "$BENCH_WARMUP" "$port" "$wq"
	if [[ -n $updir ]]; then up0=$(knot_queries "$updir"); fi
	log "$name: measuring ${BENCH_SECONDS}s"
	t0=$(cpu_ticks "$pid")
	b0=$(busy_ticks)
	w0=$(date +%s.%N)
	dnsperf_run "$out" "$BENCH_SECONDS" "$port" "$mq"
	clicpu=$DNSPERF_CPU
	if [[ -n ${QUERY_FILE_FN:-} ]]; then rm -f "$wq" "$mq"; fi
	w1=$(date +%s.%N)
	b1=$(busy_ticks)
	t1=$(cpu_ticks "$pid")
	kill -0 "$pid" 2>/dev/null || die "$name died during the measured run (log: $dir/log)"
	srvcpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
		'BEGIN { printf "%.0f", 100 * (b - a) / hz / (w1 - w0) }')
	# CPU used by everything else on the machine (other users' builds and
	# tests), in % of one core; a few % is the script itself.
	othercpu=$(awk -v a="$b0" -v b="$b1" -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" -v s="$srvcpu" -v c="$clicpu" \
		'BEGIN { o = 100 * (b - a) / hz / (w1 - w0) - s - c; printf "%.0f", o < 0 ? 0 : o }')
	qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$out")
	lost=$(awk '/Queries lost:/ {print $3}' "$out")
	completed=$(awk '/Queries completed:/ {print $3}' "$out")
	# "Response codes:       NOERROR 900 (90.00%), NXDOMAIN 100 (10.00%)"
	rcodes=$(awk -F': *' '/Response codes:/ {
		n = split($2, parts, /, */); s = ""
		for (i = 1; i <= n; i++) { split(parts[i], f, " "); s = s (s ? " " : "") f[1] "=" f[2] }
		print s }' "$out")
	# "Average packet size:  request 38, response 80": bigger answers cost
	# dnsperf (and the kernel) more per query.
	respsize=$(awk '/Average packet size:/ {print $NF}' "$out")
	[[ -z $respsize ]] || rcodes+=" avg-resp=${respsize}B"
	[[ -n $qps ]] || die "cannot parse dnsperf output $out"
	if [[ -n $updir ]]; then
		up1=$(knot_queries "$updir")
		if [[ $upw =~ ^[0-9]+$ && $up0 =~ ^[0-9]+$ && $up1 =~ ^[0-9]+$ ]]; then
			extra="upstream queries: $((up0 - upw)) in warm-up, $((up1 - up0)) in measured run"
			if [[ ${completed:-0} -gt 0 ]]; then
				extra+=$(awk -v u=$((up1 - up0)) -v d="$completed" 'BEGIN { printf " (cache hits %.2f%%)", 100 * (1 - u / d) }')
			fi
		else
			extra="upstream queries: ?"
		fi
	fi
	RESULTS+=("$mode|$name|$round|$qps|${lost:-?}|${rcodes:-?}|$srvcpu|$clicpu|$othercpu|$extra")
}

broken() { # MODE NAME WHY
	RESULTS+=("$1|$2|-|BROKEN|-|$3|-|-|-|")
}

# bench_one MODE NAME ROUND START_FN START_ARGS... : start, check, measure, stop.
# The server's port is the second start argument.
bench_one() {
	local mode=$1 name=$2 round=$3 start=$4 checks=$5 flag=$6 queries=$7 updir=$8
	shift 8
	local dir=$1 port=$2 pid
	log "$name: starting on 127.0.0.1:$port, core $SERVER_CPU"
	"$start" "$@"
	pid=$SERVER_PID
	if ! wait_ready "$name" "$pid" "$port" "$dir/log" "$SERVER_CPU"; then
		stop_pid "$pid"
		broken "$mode" "$name" "did not start (log above)"
		return
	fi
	if ! sanity "$name" "$port" "$checks" "$flag"; then
		echo "run.sh: $name fails the sanity queries above; not benchmarked" >&2
		stop_pid "$pid"
		broken "$mode" "$name" "wrong answers (see above)"
		return
	fi
	measure "$mode" "$name" "$pid" "$port" "$queries" "$dir" "$updir" "$round"
	stop_pid "$pid"
}

gen() { # MODE DIR: zone in DIR/zones, queries and checks in DIR
	mkdir -p "$2/zones"
	"$TMP/gen" -mode "$1" -origin "$ORIGIN" -names 10000 -lines 50000 -distinct 5000 \
		-zone "$2/zones/${ORIGIN%.}.zone" -queries "$2/queries" -checks "$2/checks"
}

# bench_auth [MODE]: auth over UDP, or auth-tcp (dnsperf -m tcp: a TCP
# connection per dnsperf client, queries pipelined on it).
bench_auth() {
	local mode=${1:-auth} d=$TMP/${1:-auth} r
	gen auth "$d"
	log "$mode: $(wc -l <"$d/queries") queries over a $(grep -vc '^[;$]' "$d/zones/${ORIGIN%.}.zone")-record zone"
	[[ $mode != auth-tcp ]] || DNSPERF_EXTRA="-m tcp"
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		free_port
		bench_one "$mode" hybridns "$r" start_hybridns_auth "$d/checks" aa "$d/queries" "" \
			"$d/hybridns.$r" "$FREE_PORT" "$d/zones" "$SERVER_CPU"
		free_port
		bench_one "$mode" knot "$r" start_knot "$d/checks" aa "$d/queries" "" \
			"$d/knot.$r" "$FREE_PORT" "$d/zones" "$SERVER_CPU"
	done
	DNSPERF_EXTRA=
}

# start_upstream MODE DIR: the Knot upstream of the forwarding modes, on core
# 0, serving DIR/zones and checked with DIR/checks; sets UP_PID and UP_PORT.
UP_PID= UP_PORT=
start_upstream() {
	free_port
	UP_PORT=$FREE_PORT
	log "$1: upstream knot on 127.0.0.1:$UP_PORT, core $CLIENT_CPU"
	start_knot "$2/upstream" "$UP_PORT" "$2/zones" "$CLIENT_CPU"
	UP_PID=$SERVER_PID
	wait_ready "upstream knot" "$UP_PID" "$UP_PORT" "$2/upstream/log" "$CLIENT_CPU" || die "upstream Knot did not start"
	sanity "upstream knot" "$UP_PORT" "$2/checks" aa || die "upstream Knot gives wrong answers"
}

bench_forward() {
	local d=$TMP/forward r up uport
	gen forward "$d"
	# The upstream shares core 0 with dnsperf rather than competing with the
	# server under test; after warm-up it sees almost no traffic (cache hits).
	start_upstream forward "$d"
	up=$UP_PID uport=$UP_PORT
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		free_port
		bench_one forward hybridns "$r" start_hybridns_forward "$d/checks" ra "$d/queries" "$d/upstream" \
			"$d/hybridns.$r" "$FREE_PORT" "$uport" "$SERVER_CPU"
		free_port
		bench_one forward unbound "$r" start_unbound "$d/checks" ra "$d/queries" "$d/upstream" \
			"$d/unbound.$r" "$FREE_PORT" "$uport" "$SERVER_CPU"
	done
	stop_pid "$up"
}

# miss_queries DIR NAME ROUND PHASE SECONDS: write a query file of names no
# one has asked before (tagged with server, round and phase) with enough lines
# for MISS_QPS_MAX qps over SECONDS, and print its path. dnsperf reads it once
# (-n 1), so a name is never repeated even if a server is faster than that.
MISS_QPS_MAX=80000
miss_queries() {
	local dir=$1 name=$2 round=$3 phase=$4 secs=$5 f
	f="$dir/queries.$phase.$round"
	"$TMP/gen" -mode miss -origin "$ORIGIN" -tag "$name$round$phase" -count $((MISS_QPS_MAX * secs)) \
		-seed "$round" -queries "$f" || die "gen -mode miss failed"
	echo "$f"
}

bench_forward_miss() {
	local d=$TMP/forward-miss r up uport
	gen forward "$d"
	# As in forward, the upstream shares core 0 with dnsperf; here it answers
	# every query (NXDOMAIN), so its work is part of each server's run alike.
	start_upstream forward-miss "$d"
	up=$UP_PID uport=$UP_PORT
	QUERY_FILE_FN=miss_queries
	DNSPERF_EXTRA="-n 1"
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		free_port
		bench_one forward-miss hybridns "$r" start_hybridns_forward "$d/checks" ra "" "$d/upstream" \
			"$d/hybridns.$r" "$FREE_PORT" "$uport" "$SERVER_CPU"
		free_port
		bench_one forward-miss unbound "$r" start_unbound "$d/checks" ra "" "$d/upstream" \
			"$d/unbound.$r" "$FREE_PORT" "$uport" "$SERVER_CPU"
	done
	QUERY_FILE_FN=
	DNSPERF_EXTRA=
	stop_pid "$up"
}

# ---------------------------------------------------------------------------
# zone-scale: load time and memory of a large zone file.

SCALE=() # "server|round|seconds|rss-at-answer-KiB|rss-settled-KiB"

rss_kib() { # PID: resident set size in KiB
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

start_hybridns_scale() { # DIR PORT ZONEDIR
	mkdir -p "$1"
	spawn "$1/log" "0-1" "$HYBRIDNS" serve --http-listen off --listen "127.0.0.1:$2" --zone-dir "$3"
}
start_knot_scale() { # DIR PORT ZONEDIR
	knot_conf "$1" "$2" "$3" default
	spawn "$1/log" "0-1" knotd -c "$1/knot.conf"
}

# scale_one NAME ROUND START DIR ZONEDIR LAST CHECKS: start the server, time
# until LAST answers, read its RSS then and BENCH_SETTLE s later, check it.
scale_one() {
	local name=$1 round=$2 start=$3 dir=$4 zonedir=$5 last=$6 checks=$7 port t0 at pid secs rss0 rss1
	free_port
	port=$FREE_PORT
	wait_quiet
	log "$name: loading on 127.0.0.1:$port (round $round)"
	t0=$(date +%s.%N)
	"$start" "$dir" "$port" "$zonedir"
	pid=$SERVER_PID
	if ! at=$("$TMP/gen" -mode wait -server "127.0.0.1:$port" -qname "$last" -timeout 180s); then
		echo "run.sh: $name never answered $last; last lines of its log:" >&2
		tail -n 20 "$dir/log" >&2 || true
		stop_pid "$pid"
		SCALE+=("$name|$round|BROKEN|-|-")
		return
	fi
	rss0=$(rss_kib "$pid")
	secs=$(awk -v a="$t0" -v b="$at" 'BEGIN { printf "%.2f", b - a }')
	# Settled: what the process holds once the load's garbage is gone (a
	# wait for the servers' own background work, not synchronization).
	sleep "$BENCH_SETTLE"
	rss1=$(rss_kib "$pid")
	if ! sanity "$name" "$port" "$checks" aa; then
		stop_pid "$pid"
		SCALE+=("$name|$round|BROKEN|-|-")
		return
	fi
	log "$name: answered after ${secs}s, RSS $((rss0 / 1024)) MiB, settled $((rss1 / 1024)) MiB"
	SCALE+=("$name|$round|$secs|$rss0|$rss1")
	stop_pid "$pid"
}

bench_zone_scale() {
	local d=$TMP/zone-scale r last
	mkdir -p "$d/zones"
	"$TMP/gen" -mode scale -origin "$ORIGIN" -records "$BENCH_RECORDS" \
		-zone "$d/zones/${ORIGIN%.}.zone" -checks "$d/checks" || die "gen -mode scale failed"
	last=$(awk 'NR == 2 {print $1}' "$d/checks")
	log "zone-scale: $BENCH_RECORDS records ($(($(stat -c %s "$d/zones/${ORIGIN%.}.zone") / 1048576)) MiB), last name $last"
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		scale_one hybridns "$r" start_hybridns_scale "$d/hybridns.$r" "$d/zones" "$last" "$d/checks"
		scale_one knot "$r" start_knot_scale "$d/knot.$r" "$d/zones" "$last" "$d/checks"
	done
}

report_scale() {
	local line name round secs rss0 rss1
	echo
	echo "## zone-scale: hybridns vs knot, a $BENCH_RECORDS-record zone file (both servers on both cores)"
	printf '%-9s %5s %9s %14s %14s\n' server round seconds rss-answer rss-settled
	for line in "${SCALE[@]}"; do
		IFS='|' read -r name round secs rss0 rss1 <<<"$line"
		[[ $rss0 == - ]] || rss0="$((rss0 / 1024)) MiB"
		[[ $rss1 == - ]] || rss1="$((rss1 / 1024)) MiB"
		printf '%-9s %5s %9s %14s %14s\n' "$name" "$round" "$secs" "$rss0" "$rss1"
	done
	printf '%s\n' "${SCALE[@]}" | awk -F'|' '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		}
		$3 ~ /^[0-9.]+$/ {
			if ($1 == "hybridns") { ht[++nh] = $3; hm[nh] = $5 } else { kt[++nk] = $3; km[nk] = $5 }
		}
		END {
			if (nh == 0 || nk == 0) { print "ratio hybridns/knot: n/a (a server was not measured)"; exit }
			a = median(ht, nh); b = median(kt, nk)
			printf "load-time ratio hybridns/knot: %.2f   (median seconds %.2f / %.2f; <= 1.00 is the goal)\n", a / b, a, b
			a = median(hm, nh); b = median(km, nk)
			printf "memory ratio hybridns/knot:    %.2f   (median settled RSS %.0f / %.0f MiB; <= 1.00 is the goal)\n", a / b, a / 1024, b / 1024
		}'
}

# report MODE REFERENCE: the table and the ratio of median qps.
report() {
	local mode=$1 ref=$2 line
	echo
	echo "## $mode: hybridns vs $ref (server on core $SERVER_CPU, dnsperf on core $CLIENT_CPU," \
		"${BENCH_SECONDS}s runs, -q $DNSPERF_Q)"
	printf '%-9s %5s %9s %7s %7s %7s %7s %9s  %s\n' server round qps lost srv-cpu dnsperf other qps/core rcodes
	for line in "${RESULTS[@]}"; do
		IFS='|' read -r m name round qps lost rcodes srvcpu clicpu othercpu extra <<<"$line"
		[[ $m == "$mode" ]] || continue
		percore=-
		if [[ $srvcpu =~ ^[0-9]+$ && $srvcpu -gt 0 ]]; then percore=$((qps * 100 / srvcpu)); fi
		[[ $srvcpu == - ]] || srvcpu+=%
		[[ $clicpu == - ]] || clicpu+=%
		[[ $othercpu == - ]] || othercpu+=%
		printf '%-9s %5s %9s %7s %7s %7s %7s %9s  %s\n' "$name" "$round" "$qps" "$lost" "$srvcpu" "$clicpu" "$othercpu" "$percore" "$rcodes"
		if [[ -n $extra ]]; then printf '%-9s %5s %s\n' "" "" "$extra"; fi
	done
	printf '%s\n' "${RESULTS[@]}" | awk -F'|' -v mode="$mode" -v ref="$ref" '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		}
		$1 == mode && $4 ~ /^[0-9]+$/ {
			if ($2 == "hybridns") { h[++nh] = $4; if ($7 > 0) hc[++nhc] = $4 * 100 / $7 }
			else { r[++nr] = $4; if ($7 > 0) rc[++nrc] = $4 * 100 / $7 }
			if ($9 + 0 > 20) busy = 1
			else if ($7 + 0 < 90 && $8 + 0 >= 85) client[$2] = 1
			else if ($7 + 0 < 90) window[$2] = 1
		}
		END {
			if (nh == 0 || nr == 0) { printf "ratio hybridns/%s: n/a (a server was not measured)\n", ref; exit }
			mh = median(h, nh); mr = median(r, nr)
			printf "ratio hybridns/%s: %.2f   (median qps %.0f / %.0f)\n", ref, mh / mr, mh, mr
			if (nhc && nrc) {
				mh = median(hc, nhc); mr = median(rc, nrc)
				printf "per-core ratio:      %.2f   (median qps per second of server CPU %.0f / %.0f)\n", mh / mr, mh, mr
			}
			for (s in client) printf "note: %s < 90%% busy while dnsperf was saturated in some run: dnsperf limited %s, whose qps is a lower bound\n", s, s
			for (s in window) printf "note: %s < 90%% and dnsperf < 85%% busy in some run: the -q window or cross-core latency limited it\n", s
			if (busy) print "WARNING: other processes used > 20% of a core during some run: the machine was not quiet, numbers are unreliable"
		}'
}

log "temp dir $TMP"
(cd "$REPO" && go build -o "$TMP/gen" ./test/bench/gen) || die "go build ./test/bench/gen failed"
build_hybridns

case "$MODE" in
auth) bench_auth ;;
auth-tcp) bench_auth auth-tcp ;;
forward) bench_forward ;;
forward-miss) bench_forward_miss ;;
zone-scale) bench_zone_scale ;;
all)
	bench_auth
	bench_auth auth-tcp
	bench_forward
	bench_forward_miss
	;;
esac

case "$MODE" in
auth) report auth knot ;;
auth-tcp) report auth-tcp knot ;;
forward) report forward unbound ;;
forward-miss) report forward-miss unbound ;;
zone-scale) report_scale ;;
all)
	report auth knot
	report auth-tcp knot
	report forward unbound
	report forward-miss unbound
	;;
esac

# Exit non-zero if any server was broken, so CI-like callers notice.
for line in "${RESULTS[@]}" "${SCALE[@]}"; do
	if [[ $line == *"|BROKEN|"* ]]; then exit 1; fi
done
