package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
)

// Version is ngxsockify's version.
const Version = "0.1.0"

// nginxVersion is the nginx release whose behaviour ngxsockify follows. -v
// and -V name it first, in nginx's words, so that tools that gate on the
// version (nginx's test suites, Test::Nginx) parse it.
const nginxVersion = "1.22.1"

// builtWith are the optional nginx modules (configure's --with-X flags) that
// ngxsockify implements. Harnesses read `-V` to decide which tests apply
// (nginx-tests' has_module), so list a module here only once it works.
// Modules nginx builds by default are not negated (no --without-X for
// proxy, gzip, ...): the suites then run their files, and what ngxsockify
// lacks shows as failures instead of as skipped files.
var builtWith = []string{
	"http_ssl_module",
	"http_v2_module",
	"http_realip_module",
	"http_auth_request_module",
	"http_stub_status_module",
	"http_sub_module",
	"http_addition_module",
	"http_random_index_module",
	"http_secure_link_module",
	"http_gzip_static_module",
	"http_gunzip_module",
	"http_flv_module",
	"http_dav_module",
	// debug: the error logs take level debug, and a request writes nginx's
	// "http log handler" line there (nginx-tests error_log.t)
	"debug",
}

// tlsLevel names the OpenSSL release whose TLS features (TLS 1.3,
// per-server protocols chosen after SNI, certificates picked per handshake,
// session resumption) crypto/tls gives ngxsockify. Tools gate on it in -V
// as they gate on nginx's version: nginx-tests' has("openssl:1.1.1"),
// Test::Nginx::Socket's OpenSSL-dependent blocks (otherwise skipped, never
// run), certbot's choice of TLS options. The line names crypto/tls and says
// that no OpenSSL is linked in.
const tlsLevel = "1.1.1"

// addModules are the third-party modules ngxsockify stands in for.
var addModules = []string{"ngx_http_lua_module(gopher-lua)", "headers-more-nginx-module", "websockify"}

// printVersion writes what `nginx -v` (full false) or `nginx -V` (full true)
// writes, to w (nginx writes it to stderr).
func printVersion(w io.Writer, full bool) {
	fmt.Fprintf(w, "nginx version: nginx/%s (ngxsockify/%s)\n", nginxVersion, Version)
	if !full {
		return
	}
	fmt.Fprintf(w, "built by %s\nbuilt with OpenSSL %s compatible TLS (Go crypto/tls, no OpenSSL inside)\nTLS SNI support enabled\nconfigure arguments:%s\n",
		runtime.Version(), tlsLevel, configureArgs())
}

// configureArgs is nginx's NGX_CONFIGURE for ngxsockify: the modules it is
// "built with", each after a space, as -V prints them and as Lua's
// ngx.config.nginx_configure() answers.
func configureArgs() string {
	var b strings.Builder
	for _, m := range builtWith {
		b.WriteString(" --with-" + m)
	}
	for _, m := range addModules {
		b.WriteString(" --add-module=" + m)
	}
	return b.String()
}
