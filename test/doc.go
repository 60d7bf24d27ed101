// Package test holds ngxsockify's black-box tests: they build the binary
// (./cmd/ngxsockify) once, run it and real nginx (the oracle) on generated
// configs on 127.0.0.1, and compare what clients see.
//
// # Harness (harness_test.go)
//
// TestMain builds the binary into a temporary directory (ngxBin). A build
// failure does not abort the package: tests that need the binary call
// requireNgxsockify and fail with the compiler output; nginx-only tests run.
// NGX_TEST_BUILDFLAGS adds build flags (for example "-race"); NGX_TEST_BIN
// names a prebuilt binary to test instead of building one (a relative path is
// taken from the module root, e.g. bin/ngxsockify).
//
//   - requireNginx(t) returns /usr/sbin/nginx; skips the test when nginx or
//     its Lua modules are missing, fails instead when CI=true.
//   - freePort(t) returns a port on 127.0.0.1 that was free a moment ago.
//   - startNginx(t, httpBody) and startNgxsockify(t, httpBody) write a main
//     config (pid and error_log at level info in the temp dir, the ndk and Lua
//     load_module lines, events {}, http { httpBody }) and start the server
//     with `-p <dir>/ -c <dir>/nginx.conf -g 'daemon off; master_process off;'`
//     (both default to daemon on). The body may use {{DIR}} (the
//     temp dir), {{PORT}}, {{PORT2}} ... {{PORT9}} (free ports); {{PORT}} is
//     required and is where readiness is checked: the port must accept
//     connections on a socket held by the started process (not a stranger),
//     within 30s, else the test fails with the output and error.log. A bind
//     collision is retried with new ports. startServer(t, kind, ServerOptions)
//     also takes a whole main config, extra files and arguments.
//   - The returned *Server has Addr ("127.0.0.1:port"), Port, Ports, Dir,
//     Conf, Kind and the methods ErrorLog, Output, URL, Stop, Signal, Exited.
//     t.Cleanup stops it (SIGTERM to its process group, SIGKILL after 5s) and
//     fails the test if the process died during the test or printed a Go
//     panic or data race.
//   - checkConf(t, bin, mainConf) runs `<bin> -t` on a main config text (or an
//     existing file path) and returns the combined output and the exit code.
//     wrapHTTP(body) builds the same main config startNginx uses.
//   - rawRequest(addr, raw, timeout) sends bytes as given over a new TCP
//     connection and parses one response (status, headers, body).
//
// # Suites
//
//   - routing_test.go: differential tests. Each file in testdata/routing holds
//     an http{} body, a line "----", then one request per line; every request
//     goes to nginx and to ngxsockify and status, body and Location must agree.
//   - e2e_novnc_test.go: Debian noVNC (vnc_lite.html) in headless chromium
//     connects through ngxsockify to Xvnc and checks the desktop colour, on a
//     plain location and on a Lua-signed one (wrong token: 403);
//     TestWebsockifyRelay (same file) drives the relay with a WebSocket client
//     and a TCP echo server: subprotocols, 256 KiB byte for byte, close
//     frames, refused targets. NGX_E2E_TARGET=websockify runs both against
//     Python websockify instead (checks that are ours alone are skipped).
package test
