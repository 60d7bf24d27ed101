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
var builtWith = []string{
	"http_ssl_module",
	"http_realip_module",
}

// builtWithout are the modules nginx builds by default that ngxsockify does
// not have (their directives are ignored, fail closed or answer 502; see
// nginxconf/directives.go). They are printed as --without-X, as a build of
// nginx without them would, so harnesses skip their tests. Remove a module
// here when it is implemented.
var builtWithout = []string{
	"http_ssi_module", "http_userid_module", "http_mirror_module",
	"http_gzip_module", "http_geo_module", "http_split_clients_module",
	"http_referer_module", "http_proxy_module", "http_fastcgi_module",
	"http_uwsgi_module", "http_scgi_module", "http_grpc_module",
	"http_memcached_module", "http_limit_conn_module", "http_limit_req_module",
	"http_empty_gif_module", "http_browser_module",
	"http_upstream_hash_module", "http_upstream_ip_hash_module",
	"http_upstream_least_conn_module", "http_upstream_random_module",
	"http_upstream_keepalive_module", "http_upstream_zone_module",
	"http-cache",
}

// addModules are the third-party modules ngxsockify stands in for.
var addModules = []string{"ngx_http_lua_module(gopher-lua)", "websockify"}

// printVersion writes what `nginx -v` (full false) or `nginx -V` (full true)
// writes, to w (nginx writes it to stderr).
func printVersion(w io.Writer, full bool) {
	fmt.Fprintf(w, "nginx version: nginx/%s (ngxsockify/%s)\n", nginxVersion, Version)
	if !full {
		return
	}
	var args []string
	for _, m := range builtWith {
		args = append(args, "--with-"+m)
	}
	for _, m := range builtWithout {
		args = append(args, "--without-"+m)
	}
	for _, m := range addModules {
		args = append(args, "--add-module="+m)
	}
	fmt.Fprintf(w, "built by %s\nbuilt with Go crypto/tls\nTLS SNI support enabled\nconfigure arguments: %s\n",
		runtime.Version(), strings.Join(args, " "))
}
