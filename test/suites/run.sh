#!/usr/bin/env bash
# Runs files of a public nginx test suite against Debian's nginx and against
# ngxsockify, and prints per-file pass counts side by side. See README.md
# beside this file; `make nginx-tests` and `make lua-tests` call it.
#
#   run.sh nginx   nginx-tests (Perl, Test::Nginx from $NGINX_TESTS/lib)
#   run.sh lua     lua-nginx-module's t/ with openresty's test-nginx
#
# Environment:
#   FILES            suite files, relative to the checkout; a directory
#                    stands for its *.t files (required)
#   NGINX_TESTS      nginx-tests checkout (run.sh nginx)
#   LUA_NGINX_MODULE lua-nginx-module checkout, TEST_NGINX test-nginx
#                    checkout (run.sh lua)
#   NGXSOCKIFY_BIN   the ngxsockify binary (required)
#   NGINX_BIN        real nginx (default /usr/sbin/nginx)
#   NGINX_MODULES    directory of nginx's dynamic modules
#                    (default /usr/lib/nginx/modules)
#   LUA_LOAD_MODULES the modules test-nginx loads (TEST_NGINX_LOAD_MODULES),
#                    names in NGINX_MODULES (default: ndk and lua; blocks
#                    that use other modules' directives, echo's among them,
#                    are skipped on both servers: lua-skip.pl)
#   SERVERS          which to run (default "nginx ngxsockify")
#   FILE_TIMEOUT     seconds one file may take on one server (default 300)
#   SUITE_USER       the unprivileged user the suites run as (default nobody;
#                    nginx-tests refuse to run as root)
#   RESULTS          where the raw outputs and the table go
#                    (default /tmp/ngxsockify-suites)
#   RECOUNT          1: run nothing, print the table from the outputs
#                    already in RESULTS
set -u -o pipefail

suite=${1:?usage: run.sh nginx|lua}
: "${FILES:?FILES names the suite files to run}"
: "${NGXSOCKIFY_BIN:?NGXSOCKIFY_BIN names the ngxsockify binary}"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
NGINX_MODULES=${NGINX_MODULES:-/usr/lib/nginx/modules}
LUA_LOAD_MODULES=${LUA_LOAD_MODULES:-ndk_http_module.so ngx_http_lua_module.so}
SERVERS=${SERVERS:-nginx ngxsockify}
FILE_TIMEOUT=${FILE_TIMEOUT:-300}
SUITE_USER=${SUITE_USER:-nobody}
RESULTS=${RESULTS:-/tmp/ngxsockify-suites}
RECOUNT=${RECOUNT:-}

die() { echo "run.sh: $*" >&2; exit 2; }

case $suite in
nginx)
	checkout=${NGINX_TESTS:?NGINX_TESTS names the nginx-tests checkout}
	[ -f "$checkout/lib/Test/Nginx.pm" ] || die "$checkout is not an nginx-tests checkout (no lib/Test/Nginx.pm)"
	;;
lua)
	checkout=${LUA_NGINX_MODULE:?LUA_NGINX_MODULE names the lua-nginx-module checkout}
	: "${TEST_NGINX:?TEST_NGINX names the test-nginx checkout}"
	[ -d "$checkout/t" ] || die "$checkout is not a lua-nginx-module checkout (no t/)"
	[ -f "$TEST_NGINX/lib/Test/Nginx/Socket/Lua.pm" ] || die "$TEST_NGINX is not a test-nginx checkout"
	load_modules=
	for m in $LUA_LOAD_MODULES; do
		[ -f "$NGINX_MODULES/$m" ] || die "no $NGINX_MODULES/$m (Debian: libnginx-mod-http-lua)"
		load_modules+=" $NGINX_MODULES/$m"
	done
	;;
*) die "unknown suite $suite (nginx or lua)" ;;
esac
command -v prove >/dev/null || die "prove not found (Debian: perl)"
here=$(dirname "$(realpath "$0")")
id "$SUITE_USER" >/dev/null 2>&1 || die "no user $SUITE_USER"
NGXSOCKIFY_BIN=$(realpath "$NGXSOCKIFY_BIN")

# The suites run as $SUITE_USER: everything they read must be readable.
as_user() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$SUITE_USER" -- "$@"
	else
		"$@" # already unprivileged
	fi
}
for p in "$checkout" "${TEST_NGINX:-$checkout}" "$NGXSOCKIFY_BIN"; do
	as_user test -r "$p" || die "$p is not readable by $SUITE_USER"
done

# Expand directories into their .t files.
files=()
for f in $FILES; do
	if [ -d "$checkout/$f" ]; then
		while IFS= read -r g; do files+=("${g#"$checkout"/}"); done < <(find "$checkout/$f" -maxdepth 1 -name '*.t' | sort)
	elif [ -f "$checkout/$f" ]; then
		files+=("$f")
	else
		die "no $f in $checkout"
	fi
done

out=$RESULTS/$suite
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/ngxsockify-suite.XXXXXX")
chown "$SUITE_USER" "$work" 2>/dev/null || true
trap 'rm -rf "$work"' EXIT
# lua-nginx-module's blocks name their certificates ../../cert/*, relative
# to servroot/conf ($work/cert), or $TEST_NGINX_CERT_DIR/cert/*, the
# directory of the (copied) file ($work/files/t/cert).
if [ "$suite" = lua ]; then
	mkdir -p "$work/files/t"
	ln -s "$checkout/t/cert" "$work/cert"
	ln -s "$checkout/t/cert" "$work/files/t/cert"
	# The suite's test keys are 1024-bit RSA with SHA-1 signatures, which
	# OpenSSL 3 refuses at its default security level 2 ("ee key too
	# small": nginx does not start). OpenResty's own CI runs at level 0-1;
	# so does the runner, for both servers (ngxsockify does not read it).
	cat >"$work/openssl.cnf" <<-'CNF'
		openssl_conf = openssl_init
		[openssl_init]
		ssl_conf = ssl_sect
		[ssl_sect]
		system_default = system_default_sect
		[system_default_sect]
		CipherString = DEFAULT@SECLEVEL=0
	CNF
	chmod a+r "$work/openssl.cnf"
fi

# The lua suite runs a copy of each file in which the blocks that need a
# module the two servers do not both have carry "--- SKIP" (lua-skip.pl);
# the number of such blocks goes to $out/skipped/<file>.
skipped_dir=$out/skipped
[ "$suite" != lua ] || mkdir -p "$skipped_dir"
# prepare_lua_file FILE: writes the copy; prints its path, or nothing when
# every block is skipped (test-nginx refuses a plan of 0 tests).
prepare_lua_file() {
	local copy=$work/files/$1 n m
	mkdir -p "$(dirname "$copy")"
	chown "$SUITE_USER" "$work/files" 2>/dev/null || true
	read -r _ n m < <(perl "$here/lua-skip.pl" "$checkout/$1" "$copy" 2>"$skipped_dir/${1//\//_}.why")
	echo "${n:-?}" >"$skipped_dir/${1//\//_}"
	chmod -R a+rX "$work/files"
	[ "${n:-x}" = "${m:-y}" ] || echo "$copy"
}

binary() { if [ "$1" = nginx ]; then echo "$NGINX_BIN"; else echo "$NGXSOCKIFY_BIN"; fi; }

# stop_leftover PIDFILE BIN: after a timeout, ends the server the killed
# file left running (a daemon escapes the timeout's process group), by pid,
# only when that pid runs BIN.
stop_leftover() {
	local pid
	[ -f "$1" ] || return 0
	pid=$(cat "$1" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(realpath "$2")" ] || return 0
	kill -QUIT "$pid" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
	kill -KILL "$pid" 2>/dev/null
}

# run_file SERVER FILE: runs one file, TAP (and diagnostics) into the
# results directory.
run_file() {
	local server=$1 file=$2 bin log rc
	bin=$(binary "$server")
	log=$out/$server/${file//\//_}.tap
	mkdir -p "$out/$server"
	case $suite in
	nginx)
		(cd "$checkout" && as_user env TEST_NGINX_BINARY="$bin" TEST_NGINX_MODULES="$NGINX_MODULES" \
			timeout -k 10 "$FILE_TIMEOUT" prove -v "$file") >"$log" 2>&1
		rc=$?
		;;
	lua)
		local root=$work/servroot copy
		rm -rf "$root"
		as_user mkdir -p "$root"
		copy=$(prepare_lua_file "$file")
		if [ -z "$copy" ]; then
			echo "1..0 # SKIP run.sh: every block needs a module the servers do not both have" >"$log"
			return
		fi
		(cd "$checkout" && as_user env TEST_NGINX_BINARY="$bin" TEST_NGINX_SERVROOT="$root" \
			TEST_NGINX_LOAD_MODULES="$load_modules" OPENSSL_CONF="$work/openssl.cnf" \
			timeout -k 10 "$FILE_TIMEOUT" prove -I"$TEST_NGINX/lib" -I. -v "$copy") >"$log" 2>&1
		rc=$?
		stop_leftover "$root/logs/nginx.pid" "$bin"
		;;
	esac
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "# run.sh: timed out after ${FILE_TIMEOUT}s" >>"$log"
	fi
}

# count LOG: prints "passed total note seen" from a TAP log. passed counts
# ok lines that are not skips; total is the plan (or the tests seen, if
# more); seen is the tests that ran;
# note is skip (the file skipped itself), timeout, bail, died (no plan:
# the file ended before it said how many tests it has) or -.
count() {
	awk '
	/^1\.\.[0-9]+/ && !plan { plan = substr($1, 4) + 0; if (plan == 0 && tolower($0) ~ /# *skip/) skip = 1 }
	/^ok [0-9]+/ { seen++; if (tolower($0) !~ /# *skip/) pass++ }
	/^not ok [0-9]+/ { seen++ }
	/\.\. skipped: / { skip = 1 }   # prove -v shows a skip_all so
	/^Bail out!|^Bailout called/ { bail = 1 }
	/^# run.sh: timed out/ { timeout = 1 }
	END {
		total = plan > seen ? plan : seen
		note = skip ? "skip" : timeout ? "timeout" : bail ? "bail" : !plan ? "died" : "-"
		printf "%d %d %s %d\n", pass, total, note, seen
	}' "$1"
}

cell() { # passed total note -> "p/t" or "p/t (note)"
	if [ "$3" = - ]; then echo "$1/$2"; else echo "$1/$2 ($3)"; fi
}

table=$out/table.txt
{
	printf '%-34s' file
	[ "$suite" != lua ] || printf ' %-8s' skipped
	for s in $SERVERS; do printf ' %-20s' "$s"; done
	printf '\n'
} | tee "$table"
declare -A tp tt
skipped_total=0
for s in $SERVERS; do tp[$s]=0 tt[$s]=0; done
for f in "${files[@]}"; do
	declare -A cp=() ct=() cn=()
	maxseen=0
	for s in $SERVERS; do
		[ -n "$RECOUNT" ] || run_file "$s" "$f"
		read -r cp[$s] ct[$s] cn[$s] seen < <(count "$out/$s/${f//\//_}.tap")
		[ "$seen" -le "$maxseen" ] || maxseen=$seen
	done
	line=$(printf '%-34s' "$f")
	if [ "$suite" = lua ]; then
		k=$(cat "$skipped_dir/${f//\//_}" 2>/dev/null) || k='?'
		[[ $k =~ ^[0-9]+$ ]] && skipped_total=$((skipped_total + k))
		line+=$(printf ' %-8s' "$k")
	fi
	for s in $SERVERS; do
		# A file's plan often adds tests of particular blocks by hand
		# (blocks() * 2 + 3): with blocks skipped it can promise more than
		# can run, so the total is then the most tests a server ran.
		if [ "$suite" = lua ] && [ "${k:-0}" != 0 ] && [ "$maxseen" -gt 0 ]; then ct[$s]=$maxseen; fi
		tp[$s]=$((tp[$s] + cp[$s])) tt[$s]=$((tt[$s] + ct[$s]))
		line+=$(printf ' %-20s' "$(cell "${cp[$s]}" "${ct[$s]}" "${cn[$s]}")")
	done
	echo "$line" | tee -a "$table"
done
{
	printf '%-34s' TOTAL
	[ "$suite" != lua ] || printf ' %-8s' "$skipped_total"
	for s in $SERVERS; do printf ' %-20s' "${tp[$s]}/${tt[$s]}"; done
	printf '\n'
} | tee -a "$table"
echo "run.sh: raw TAP in $out/<server>/, table in $table"
