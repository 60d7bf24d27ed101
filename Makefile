# ngxsockify build and test entry points.
#
#   make test   install missing test dependencies (root + apt-get only), go vet,
#               go test, go test -race on every package (and the black-box
#               routing suite against a -race binary), short fuzz runs
#   make build  bin/ngxsockify
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
DEB_PKGS     := nginx libnginx-mod-http-lua websockify novnc \
                tigervnc-standalone-server x11-xserver-utils chromium \
                luajit2 lua-cjson apache2-utils openssl gcc libc6-dev

.PHONY: test deps vet unit race race-pkgs race-routing fuzz build bench run clean

test: deps vet unit race fuzz
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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

run: build
	./bin/ngxsockify $(ARGS)

clean:
	rm -rf bin

# The README's two commands on a fresh Debian 12 root (debootstrap + chroot,
# as root; about 12 minutes on the 2-core machine): knobs in .ci/fresh-test.
.PHONY: fresh-test
fresh-test:
	bash .ci/fresh-test
