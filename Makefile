# ngxsockify build and test entry points.
#
#   make test   install missing test dependencies (root + apt-get only), go vet,
#               cross-builds for darwin and windows,
#               go test, go test -race on every package (and the black-box
#               routing suite against a -race binary), short fuzz runs
#   make build  bin/ngxsockify
#   make install  binary, man page, example config, systemd unit (PREFIX, DESTDIR)
#   make bench  Go benchmarks of every package
#   make run    build, then run bin/ngxsockify $(ARGS)
#
# Knobs: FUZZTIME (per fuzz target, default 10s), RACE_PKGS, TEST_TIMEOUT.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(PATH)

GO           ?= go
FUZZTIME     ?= 10s
TEST_TIMEOUT ?= 15m
# Every package but the black-box suite (race-routing covers that one).
RACE_PKGS    ?= $(shell PATH="$(PATH)" $(GO) list ./... 2>/dev/null | grep -v '/test$$')
# Debian packages the tests use. Never add `luajit`: it conflicts with
# libluajit2 and apt silently removes libnginx-mod-http-lua (use luajit2).
# gcc and libc6-dev: -race needs cgo, and a fresh Debian has no C compiler.
# whois: mkpasswd, which makes the libxcrypt hashes the htpasswd tests check.
# curl: TestHTTP2Curl (Debian's curl speaks HTTP/2 through nghttp2).
DEB_PKGS     := nginx libnginx-mod-http-lua libnginx-mod-http-headers-more-filter websockify novnc \
                tigervnc-standalone-server x11-xserver-utils chromium \
                luajit2 lua-cjson lua-nginx-string lua-nginx-redis redis-server haproxy apache2-utils openssl gcc libc6-dev \
                whois \
                curl
DEB_PKGS     += lua-nginx-redis-connector lua-nginx-dns lua-nginx-cookie # test/lualibs_test.go
DEB_PKGS     += lua-nginx-memcached memcached lua-nginx-websocket # test/lualibs_test.go

.PHONY: test deps vet cross unit race race-pkgs race-routing fuzz build bench run clean

test: deps vet cross unit race fuzz
	@echo "make test: all steps passed"

# Installs only what is missing; runs `apt-get update` once, only when an
# install is needed; skips (tests needing the tools then skip, or fail under
# CI=true) when not root or without apt-get.
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "deps: missing:$$missing (not root or no apt-get: not installing)"; \
	else \
	  echo "deps: installing:$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

vet:
	time $(GO) vet ./...

# The module builds for macOS and Windows too (the relay's epoll loop is
# Linux-only; elsewhere tunnels use the goroutine relay).
cross:
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...

# The relay's tests run twice: on event loops (the default for plain
# sockets and TLS) and on the goroutine relay (the fallback).
unit:
	time $(GO) test -timeout $(TEST_TIMEOUT) ./...
	time WEBSOCKIFY_RELAY=goroutines $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./proxy/websockify

# Race detector on every package, and the routing suite, the relay and
# robustness and TLS tests and the browser test against a -race build of the binary
# (a race report from the server fails the test via the harness).
race: race-pkgs race-routing

race-pkgs:
	time $(GO) test -race -timeout $(TEST_TIMEOUT) $(RACE_PKGS)
	time WEBSOCKIFY_RELAY=goroutines $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./proxy/websockify

race-routing:
	time NGX_TEST_BUILDFLAGS=-race $(GO) test -race -timeout $(TEST_TIMEOUT) -run '^(TestRouting|TestWebsockifyRelay|TestWebsockifyPass.*|TestRobustness.*|TestTLS.*|TestNoVNCEndToEnd)$$' ./test

# Every `func FuzzX` in a _test.go file runs for FUZZTIME; the list is
# discovered, so new targets need no Makefile change. Go 1.26's fuzz
# coordinator can fail a duration-bounded run with a bare "context deadline
# exceeded" at the end of FUZZTIME when the machine is loaded
# (golang/go#75804, fixed in Go 1.27): such a run, with no new failing input
# written under testdata/fuzz, is reported and ignored; anything else fails.
fuzz:
	@dirs=$$({ grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . || true; } | xargs -r -n1 dirname | sort -u); \
	if [ -z "$$dirs" ]; then echo "fuzz: no fuzz targets"; exit 0; fi; \
	failed=""; \
	for d in $$dirs; do \
	  for f in $$($(GO) test -list '^Fuzz' "$$d" | grep '^Fuzz' || true); do \
	    echo "fuzz: $$d $$f ($(FUZZTIME))"; \
	    corpus="$$d/testdata/fuzz/$$f"; \
	    before=0; if [ -d "$$corpus" ]; then before=$$(ls "$$corpus" | wc -l); fi; \
	    log=$$(mktemp); \
	    if $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -parallel 2 "$$d" >"$$log" 2>&1; then \
	      grep -v 'fuzz: elapsed' "$$log" || true; \
	    else \
	      cat "$$log"; \
	      after=0; if [ -d "$$corpus" ]; then after=$$(ls "$$corpus" | wc -l); fi; \
	      if [ "$$after" = "$$before" ] && grep -q 'context deadline exceeded' "$$log"; then \
	        echo "fuzz: $$f: ignoring Go's fuzztime deadline race (golang/go#75804): no failing input was written"; \
	      else failed="$$failed $$d:$$f"; fi; \
	    fi; \
	    rm -f "$$log"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi

build:
	$(GO) build -o bin/ngxsockify ./cmd/ngxsockify

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the binary, the man page,
# the example configuration (kept if one is there), the systemd unit with
# its paths set to these, and the other examples and the licence under
# share/doc. INSTALL_BIN names an already built binary (the default builds
# bin/ngxsockify). Nothing is enabled or started.
PREFIX         ?= /usr/local
SBINDIR        ?= $(PREFIX)/sbin
SYSCONFDIR     ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/ngxsockify
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL_BIN    ?= bin/ngxsockify

.PHONY: install
install: $(if $(filter bin/ngxsockify,$(INSTALL_BIN)),build)
	install -D -m 0755 $(INSTALL_BIN) $(DESTDIR)$(SBINDIR)/ngxsockify
	install -D -m 0644 docs/ngxsockify.8 $(DESTDIR)$(MANDIR)/man8/ngxsockify.8
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/ngxsockify
	test -e $(DESTDIR)$(SYSCONFDIR)/ngxsockify/nginx.conf || \
	  install -m 0644 examples/systemd/nginx.conf $(DESTDIR)$(SYSCONFDIR)/ngxsockify/nginx.conf
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|/usr/local/sbin|$(SBINDIR)|g' -e 's|/usr/local/etc|$(SYSCONFDIR)|g' \
	  examples/systemd/ngxsockify.service >$(DESTDIR)$(SYSTEMDUNITDIR)/ngxsockify.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/ngxsockify.service
	install -d -m 0755 $(DESTDIR)$(DOCDIR)/examples/nginx.service.d $(DESTDIR)$(DOCDIR)/examples/container
	sed -e 's|/usr/local/sbin|$(SBINDIR)|g' examples/systemd/nginx.service.d/ngxsockify.conf \
	  >$(DESTDIR)$(DOCDIR)/examples/nginx.service.d/ngxsockify.conf
	install -m 0644 examples/container/Dockerfile examples/container/nginx.conf $(DESTDIR)$(DOCDIR)/examples/container/
	install -m 0644 examples/systemd/nginx.conf $(DESTDIR)$(DOCDIR)/examples/nginx.conf
	install -m 0644 LICENSE README.md $(DESTDIR)$(DOCDIR)/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

run: build
	./bin/ngxsockify $(ARGS)

clean:
	rm -rf bin

# --- Public conformance suites (test/suites/README.md) ---------------------
# `make nginx-tests NGINX_TESTS=/path/to/nginx-tests` and
# `make lua-tests LUA_NGINX_MODULE=/path/to/lua-nginx-module TEST_NGINX=/path/to/test-nginx`
# run the suites against Debian's nginx and bin/ngxsockify and print per-file
# pass counts side by side. FILES=... runs other files; SERVERS, FILE_TIMEOUT,
# RESULTS and SUITE_USER are passed on to test/suites/run.sh. Not part of
# `make test`: the suites are not in this repository.

# Debian packages the suites need besides DEB_PKGS: the Perl modules of the
# two Test::Nginx harnesses and the modules Debian's nginx -V lists as
# dynamic (nginx-tests load them all). echo is not needed: the Lua runner
# skips the blocks that use it, on both servers.
SUITE_DEB_PKGS := nginx libnginx-mod-http-lua libnginx-mod-http-headers-more-filter \
                  libnginx-mod-http-geoip libnginx-mod-http-image-filter \
                  libnginx-mod-http-perl libnginx-mod-http-xslt-filter \
                  libnginx-mod-mail libnginx-mod-stream libnginx-mod-stream-geoip \
                  libtest-base-perl libtext-diff-perl liburi-perl \
                  libtest-longstring-perl liblist-moreutils-perl \
                  libio-socket-ssl-perl libhttp-message-perl

NGINX_TESTS_FILES ?= access.t access_log.t auth_basic.t autoindex.t autoindex_format.t \
	charset.t config_dump.t error_log.t headers.t http_expect_100_continue.t \
	http_include.t http_keepalive.t http_listen.t http_location.t \
	http_location_auto.t http_method.t http_server_name.t http_try_files.t \
	http_uri.t http_variables.t index.t map.t map_complex.t map_volatile.t \
	range.t realip.t realip_hostname.t realip_remote_addr.t realip_remote_port.t \
	proxy_protocol.t proxy_protocol2.t ssl_proxy_protocol.t \
	rewrite.t rewrite_if.t rewrite_set.t rewrite_unescape.t ssl.t \
	ssl_certificate.t ssl_certificate_chain.t ssl_certificates.t \
	ssl_session_reuse.t ssl_sni_protocols.t ssl_verify_client.t \
	ssl_verify_depth.t ssl_crl.t ssl_password_file.t ssl_client_escaped_cert.t \
	http_absolute_redirect.t http_error_page.t http_header_buffers.t http_host.t \
	ignore_invalid_headers.t trailers.t not_modified.t range_if_range.t referer.t \
	request_id.t geo.t geo_unix.t empty_gif.t auth_delay.t http_resolver.t \
	http_resolver_cname.t split_clients.t \
	mirror.t merge_slashes.t msie_refresh.t post_action.t proxy_bind.t \
	proxy_store.t proxy_ssl_certificate_vars.t body.t body_chunked.t \
	worker_shutdown_timeout.t worker_shutdown_timeout_proxy_upgrade.t \
	proxy.t proxy_chunked.t proxy_connection_headers.t proxy_cookie.t \
	proxy_cookie_flags.t proxy_duplicate_headers.t proxy_if.t proxy_implicit.t \
	proxy_intercept_errors.t proxy_keepalive.t proxy_merge_headers.t proxy_method.t \
	proxy_next_upstream.t proxy_next_upstream_tries.t proxy_noclose.t \
	proxy_non_idempotent.t proxy_pass_request.t proxy_request_buffering.t \
	proxy_request_buffering_chunked.t proxy_set_body.t proxy_ssl.t proxy_ssl_name.t \
	proxy_ssl_verify.t proxy_ssl_certificate.t proxy_unfinished.t proxy_unix.t \
	proxy_upgrade.t proxy_variables.t proxy_websocket.t proxy_xar.t auth_request.t \
	auth_request_satisfy.t sub_filter.t sub_filter_merge.t sub_filter_multi.t \
	stub_status.t upstream.t upstream_keepalive.t upstream_ip_hash.t upstream_hash.t \
	upstream_least_conn.t upstream_random.t upstream_max_conns.t \
	http_disable_symlinks.t http_max_headers.t userid.t userid_flags.t \
	ssl_ocsp.t ssl_reject_handshake.t ssl_stapling.t subrequest_output_buffer_size.t \
	range_flv.t dav.t dav_chunked.t dav_utf8.t \
	proxy_redirect.t proxy_ssl_crl.t limit_req.t limit_req2.t limit_req_delay.t \
	limit_req_dry_run.t limit_conn.t limit_conn_complex.t limit_conn_dry_run.t \
	limit_rate.t proxy_limit_rate.t ssl_proxy_upgrade.t proxy_ssl_keepalive.t \
	proxy_request_buffering_keepalive.t proxy_request_buffering_ssl.t \
	proxy_chunked_extra.t proxy_upstream_cookie.t proxy_extra_data.t \
	proxy_ssi_body.t proxy_max_temp_file_size.t proxy_available.t mirror_proxy.t \
	auth_request_set.t access_log_variables.t syslog.t debug_connection.t \
	http_keepalive_shutdown.t http_headers_multi.t http_resolver_aaaa.t \
	http_resolver_cleanup.t geo_ipv6.t upstream_zone.t upstream_ip_hash_ipv6.t \
	ssl_sni.t ssl_sni_sessions.t ssl_curve.t ssl_session_ticket_key.t \
	gzip.t gunzip.t gunzip_static.t gunzip_ssi.t charset_gzip_static.t \
	ssi.t ssi_if.t ssi_waited.t ssi_delayed.t ssi_include_big.t addition.t \
	addition_buffered.t secure_link.t random_index.t sub_filter_buffering.t \
	sub_filter_multi2.t not_modified_finalize.t range_clearing.t

LUA_TESTS_FILES ?= $(addprefix t/,000-sanity.t 162-socket-tls-handshake.t 162-static-module-location.t 138-balancer.t 001-set.t 002-content.t 005-exit.t \
	006-escape.t 007-md5.t 011-md5_bin.t 070-sha1.t 046-hmac.t 042-crc32.t \
	008-today.t 012-now.t 021-cookie-time.t 029-http-time.t 102-req-start-time.t \
	015-status.t 016-resp-header.t 017-exec.t 020-subrequest.t 027-multi-capture.t \
	028-req-header.t 030-uri-args.t 032-iolist.t 034-match.t 035-gmatch.t \
	036-sub.t 037-gsub.t 038-match-o.t 040-gsub-o.t 041-header-filter.t \
	043-shdict.t 044-req-body.t 045-ngx-var.t 086-init-by.t 088-req-method.t \
	103-req-http-ver.t 104-req-raw-header.t 115-quote-sql-str.t 164-say.t \
	023-rewrite 024-access \
	009-log.t 013-base64.t 019-const.t 022-redirect.t 033-ctx.t 039-sub-o.t \
	047-match-jit.t 048-match-dfa.t 049-gmatch-jit.t 050-gmatch-dfa.t \
	051-sub-jit.t 052-sub-dfa.t 053-gsub-jit.t 054-gsub-dfa.t 064-pcall.t \
	069-null.t 075-logby.t 085-if.t 092-eof.t 107-timer-errors.t 110-etag.t \
	118-use-default-type.t 120-re-find.t 121-version.t 122-worker.t \
	132-lua-blocks.t 133-worker-count.t 135-worker-id.t 136-timer-counts.t \
	137-req-misc.t 144-shdict-incr-init.t 145-shdict-list.t 167-server-rewrite.t \
	003-errors.t 010-request_body.t 030-uri-args-with-ctrl.t 058-tcp-socket.t \
	059-unix-socket.t 060-lua-memcached.t 061-lua-redis.t 066-socket-receiveuntil.t \
	067-req-socket.t 068-socket-keepalive.t 074-prefix-var.t 076-no-postpone.t \
	083-bad-sock-self.t 090-log-socket-errors.t 093-uthread-spawn.t 094-uthread-exit.t \
	096-uthread-redirect.t 098-uthread-wait.t 101-on-abort.t 105-pressure.t \
	114-config.t 116-raw-req-socket.t 127-uthread-kill.t 128-duplex-tcp-socket.t \
	155-tls13.t 168-tcp-socket-bind.t \
	004-require.t 031-post-args.t 055-subreq-vars.t 063-abort.t 072-conditional-get.t \
	080-hup-shdict.t 082-body-filter.t 089-phase.t 091-coroutine.t 119-config-prefix.t \
	123-lua-path.t 125-configure-args.t 126-shdict-frag.t 151-initby-hup.t \
	158-global-var.t 185-ngx-buf-double-free.t)

.PHONY: suite-deps nginx-tests lua-tests

suite-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(SUITE_DEB_PKGS)"

nginx-tests: suite-deps build
	@test -n "$(NGINX_TESTS)" || { echo "nginx-tests: set NGINX_TESTS=/path/to/nginx-tests (see test/suites/README.md)"; exit 2; }
	NGINX_TESTS="$(NGINX_TESTS)" FILES="$(or $(FILES),$(NGINX_TESTS_FILES))" \
	  NGXSOCKIFY_BIN=bin/ngxsockify test/suites/run.sh nginx

lua-tests: suite-deps build
	@test -n "$(LUA_NGINX_MODULE)" -a -n "$(TEST_NGINX)" || { echo "lua-tests: set LUA_NGINX_MODULE=/path/to/lua-nginx-module TEST_NGINX=/path/to/test-nginx (see test/suites/README.md)"; exit 2; }
	LUA_NGINX_MODULE="$(LUA_NGINX_MODULE)" TEST_NGINX="$(TEST_NGINX)" \
	  FILES="$(or $(FILES),$(LUA_TESTS_FILES))" \
	  NGXSOCKIFY_BIN=bin/ngxsockify test/suites/run.sh lua

# The README's two commands on a fresh Debian 12 root (debootstrap + chroot,
# as root; about 12 minutes on the 2-core machine): knobs in .ci/fresh-test.
.PHONY: fresh-test
fresh-test:
	bash .ci/fresh-test
