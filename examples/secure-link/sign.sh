#!/bin/sh
# sign.sh - print a signed noVNC URL for examples/secure-link/nginx.conf:
#   md5 = base64url(md5(EXPIRES IP ":" PORT " " KEY)), no "=" padding,
#   valid until EXPIRES (Unix time, now + TTL seconds).
#
# usage: sign.sh [ip] [port] [base-url]
#   KEY=CHANGE_ME TTL=60 sign.sh 127.0.0.1 5901 http://127.0.0.1:6080
set -eu
key=${KEY:-CHANGE_ME}
ttl=${TTL:-60}
ip=${1:-127.0.0.1}
port=${2:-5900}
base=${3:-http://127.0.0.1:6080}
expires=$(( $(date +%s) + ttl ))
md5=$(printf '%s' "$expires$ip:$port $key" | openssl md5 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')
# noVNC takes the WebSocket path (with its query) in one percent-encoded
# "path" parameter: ? -> %3F, = -> %3D, & -> %26.
printf '%s/vnc_lite.html?path=websockify%%3Fip%%3D%s%%26port%%3D%s%%26expires%%3D%s%%26md5%%3D%s\n' \
    "$base" "$ip" "$port" "$expires" "$md5"
