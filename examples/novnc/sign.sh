#!/bin/sh
# sign.sh - print a signed noVNC URL for the /websockify location of
# examples/novnc/nginx.conf (tg123/websockify-nginx-module signing scheme):
#   sign = md5(KEY . T . IP ":" PORT . KEY), valid for 30 seconds.
#
# usage: sign.sh [ip] [port] [base-url]
#   KEY=CHANGE_ME_!!!! sign.sh 127.0.0.1 5901 http://127.0.0.1:6080
set -eu
key=${KEY:-CHANGE_ME_!!!!}
ip=${1:-127.0.0.1}
port=${2:-5900}
base=${3:-http://127.0.0.1:6080}
t=$(date +%s)
sign=$(printf '%s' "$key$t$ip:$port$key" | md5sum | cut -d' ' -f1)
# noVNC takes the WebSocket path (with its query) in one percent-encoded
# "path" parameter: ? -> %3F, = -> %3D, & -> %26.
printf '%s/vnc_lite.html?path=websockify%%3Fip%%3D%s%%26port%%3D%s%%26t%%3D%s%%26sign%%3D%s\n' \
    "$base" "$ip" "$port" "$t" "$sign"
