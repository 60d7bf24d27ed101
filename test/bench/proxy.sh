#!/bin/bash
# proxy_pass benchmark: nginx 1.22 and ngxsockify side by side, proxying to
# the same backend (a third server, nginx, one worker), with the same
# worker_processes, in interleaved rounds (the order alternates each
# round). Numbers for the README, not a timed test.
#
#   small: wrk (Debian's) GETs of a 100-byte answer over client keep-alive,
#          the front keeping a pool of backend connections (keepalive 64,
#          HTTP/1.1): requests/s, p99 latency, front CPU per request
#          (utime+stime from /proc/<pid>/stat, workers summed, before/after)
#   big:   DL parallel downloads of a 64 MiB file, streamed (proxy_buffering
#          on, proxy_max_temp_file_size 0 on both: no disk): MB/s summed and
#          front CPU per MiB
#   mem:   a freshly started front, SLOWDL downloads by clients reading
#          16 MB/s each: peak RSS (sampled every 50 ms) above the RSS
#          before, per download
#
# Usage: test/bench/proxy.sh [-r ROUNDS] [-d SECONDS] [-c CONNS] [-w WORKERS] [-n DL] [-s SLOWDL] [-t "small big mem"]
#   BIN=path/to/ngxsockify (default: built into $OUT/ngxsockify.bin), OUT=/tmp/proxy-bench
# Prints one line per run and a summary with the median, min and max of each
# figure and of the ratios ngxsockify/nginx of runs paired by round.
set -euo pipefail

ROUNDS=5 DUR=8 CONNS=50 WORKERS=2 DL=4 SLOWDL=32 TESTS="small big mem"
while getopts r:d:c:w:n:s:t: o; do
	case $o in
	r) ROUNDS=$OPTARG ;; d) DUR=$OPTARG ;; c) CONNS=$OPTARG ;; w) WORKERS=$OPTARG ;; n) DL=$OPTARG ;; s) SLOWDL=$OPTARG ;; t) TESTS=$OPTARG ;;
	*) exit 2 ;;
	esac
done
OUT=${OUT:-/tmp/proxy-bench}
NGINX=${NGINX:-/usr/sbin/nginx}
for t in wrk curl "$NGINX"; do command -v "$t" >/dev/null || { echo "missing $t (apt-get install wrk curl nginx)" >&2; exit 1; }; done
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${BIN:-}" ]; then
	BIN=$OUT/ngxsockify.bin
	(cd "$ROOT" && go build -o "$BIN" ./cmd/ngxsockify)
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BPORT=$(port) NPORT=$(port) OPORT=$(port)

# the backend
mkdir -p "$OUT/backend/www" "$OUT/nginx" "$OUT/ngxsockify"
[ -s "$OUT/backend/www/big" ] || head -c $((64 << 20)) /dev/urandom >"$OUT/backend/www/big"
cat >"$OUT/backend/nginx.conf" <<EOF
worker_processes 1;
error_log $OUT/backend/error.log;
pid $OUT/backend/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$BPORT;
        location = /small { return 200 "$(printf '%0100d' 0)"; }
        location = /big { root $OUT/backend/www; }
    }
}
EOF

front() { # kind port
	cat <<EOF
worker_processes $WORKERS;
worker_rlimit_nofile 20000;
error_log $OUT/$1/error.log;
pid $OUT/$1/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$BPORT; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
            proxy_pass http://backend;
        }
    }
}
EOF
}
front nginx "$NPORT" >"$OUT/nginx/nginx.conf"
front ngxsockify "$OPORT" >"$OUT/ngxsockify/nginx.conf"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
waitport() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/small" && return; sleep 0.1; done; }
start() { # kind: (re)start a front, fresh
	if [ "$1" = nginx ]; then
		if [ -n "${NGX_MASTER:-}" ]; then kill "$NGX_MASTER"; wait "$NGX_MASTER" || true; fi
		"$NGINX" -p "$OUT/nginx/" -c "$OUT/nginx/nginx.conf" -g 'daemon off;' 2>"$OUT/nginx/stderr" &
		NGX_MASTER=$!
		PIDS+=($NGX_MASTER)
		waitport "$NPORT"
	else
		if [ -n "${OURS:-}" ]; then kill "$OURS"; wait "$OURS" || true; fi
		"$BIN" -p "$OUT/ngxsockify/" -c "$OUT/ngxsockify/nginx.conf" -g 'daemon off;' >"$OUT/ngxsockify/stderr" 2>&1 &
		OURS=$!
		PIDS+=($OURS)
		waitport "$OPORT"
	fi
}
"$NGINX" -p "$OUT/backend/" -c "$OUT/backend/nginx.conf" -g 'daemon off;' 2>"$OUT/backend/stderr" &
PIDS+=($!)
waitport "$BPORT"
start nginx
start ngxsockify

# the processes that serve: nginx's workers, ngxsockify itself
servers() { if [ "$1" = nginx ]; then pgrep -P "$NGX_MASTER" | tr '\n' ' '; else echo "$OURS"; fi; }
cpu() { # clock ticks used by the pids
	local t=0 p
	for p in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo $t
}
rss() { # KiB resident
	local t=0 p
	for p in $1; do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done
	echo $t
}
HZ=$(getconf CLK_TCK)

small() { # kind port
	local pids c0 c1 out rps p99 n
	pids=$(servers "$1")
	c0=$(cpu "$pids")
	out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$2/small")
	c1=$(cpu "$pids")
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "$1: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2; fi
	printf '%s small %-10s rps %8.0f p99_ms %7.2f cpu_us_per_req %6.1f\n' "$R" "$1" "$rps" "$p99" "$(echo "($c1 - $c0) * 1000000 / $HZ / $n" | bc -l)"
}

downloads() { # port n [curl options]: n parallel downloads of /big
	local port=$1 n=$2 i pids=()
	shift 2
	for i in $(seq "$n"); do curl -s -o /dev/null "$@" "http://127.0.0.1:$port/big" & pids+=($!); done
	wait "${pids[@]}"
}

big() { # kind port
	local pids c0 c1 t0 t1
	pids=$(servers "$1")
	c0=$(cpu "$pids")
	t0=$(date +%s.%N)
	downloads "$2" "$DL"
	t1=$(date +%s.%N)
	c1=$(cpu "$pids")
	printf '%s big   %-10s MBps %8.1f cpu_ms_per_mib %6.2f\n' "$R" "$1" \
		"$(echo "$DL * 64 * 1.048576 / ($t1 - $t0)" | bc -l)" \
		"$(echo "($c1 - $c0) * 1000 / $HZ / ($DL * 64)" | bc -l)"
}

mem() { # kind port: a fresh front; SLOWDL downloads by clients reading
	# 16 MB/s each (the backend is faster: the front holds what its buffers
	# hold); peak RSS (sampled every 50 ms) above the RSS before, per download
	local pids base peak sampler
	start "$1"
	pids=$(servers "$1")
	base=$(rss "$pids")
	(while :; do rss "$pids"; sleep 0.05; done) >"$OUT/rss.$1" &
	sampler=$!
	downloads "$2" "$SLOWDL" --limit-rate 16M
	kill $sampler 2>/dev/null || true
	wait $sampler 2>/dev/null || true
	peak=$(sort -n "$OUT/rss.$1" | tail -1)
	printf '%s mem   %-10s rss_kib_per_dl %7.0f\n' "$R" "$1" "$(echo "($peak - $base) / $SLOWDL" | bc -l)"
}

# warm both (pools, page cache)
R=r0
small nginx "$NPORT" >/dev/null
small ngxsockify "$OPORT" >/dev/null
echo "# $(date -u +%FT%TZ) rounds=$ROUNDS dur=${DUR}s conns=$CONNS workers=$WORKERS downloads=$DL slow=$SLOWDL load: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$OUT/runs.txt"
for r in $(seq "$ROUNDS"); do
	R=r$r
	if [ $((r % 2)) = 1 ]; then order="nginx:$NPORT ngxsockify:$OPORT"; else order="ngxsockify:$OPORT nginx:$NPORT"; fi
	for test in $TESTS; do
		for kp in $order; do
			"$test" "${kp%%:*}" "${kp##*:}" >>"$OUT/runs.txt"
			tail -1 "$OUT/runs.txt"
		done
	done
done

# summary: median [min..max] per figure, and of the per-round ratios
awk '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function show(name, a, n,   lo, hi, m) { m = med(a, n); lo = a[1]; hi = a[n]; printf "%-34s %10.2f  [%0.2f .. %0.2f]  n=%d\n", name, m, lo, hi, n }
{ r = $1; test = $2; kind = $3
  for (i = 4; i < NF; i += 2) { key = test " " $i; v[key, kind, r] = $(i + 1); keys[key] = 1 }
  rounds[r] = 1 }
END {
  for (key in keys) {
    for (k = 0; k < 2; k++) {
      kind = k ? "ngxsockify" : "nginx"; n = 0
      for (r in rounds) if ((key, kind, r) in v) a[++n] = v[key, kind, r]
      show(key " " kind, a, n); delete a
    }
    n = 0
    for (r in rounds) if (v[key, "nginx", r] > 0) a[++n] = v[key, "ngxsockify", r] / v[key, "nginx", r]
    show(key " ratio ngxsockify/nginx", a, n); delete a
  }
}' "$OUT/runs.txt" | sort
