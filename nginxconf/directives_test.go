package nginxconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		known   bool
		support Support
		block   bool
		flag    bool
	}{
		{"server", true, Implemented, true, false},
		{"access_by_lua_block", true, Implemented, true, false},
		{"websockify_pass", true, Implemented, false, false},
		{"gzip", true, Implemented, false, true},
		{"gunzip", true, Implemented, false, true},
		{"worker_connections", true, Ignored, false, false},
		{"secure_link", true, Implemented, false, false},
		{"disable_symlinks", true, Implemented, false, false},
		{"auth_request", true, Implemented, false, false},
		{"fastcgi_pass", true, UnsupportedContent, false, false},
		{"ssl_verify_client", true, Implemented, false, false},
		{"ssl_conf_command", true, Refused, false, false},
		{"ssl_certificate_by_lua_block", true, Implemented, true, false},
		{"ssl_session_fetch_by_lua_block", true, Refused, true, false},
		{"http2", true, Implemented, false, true},
		{"stream", true, Refused, true, false},
		{"precontent_by_lua_block", false, 0, false, false}, // newer than lua-nginx-module 0.10.23
		{"frobnicate", false, 0, false, false},
	}
	for _, tt := range tests {
		info, ok := Lookup(tt.name)
		if ok != tt.known {
			t.Errorf("Lookup(%q) known = %v, want %v", tt.name, ok, tt.known)
			continue
		}
		if !ok {
			continue
		}
		if info.Support != tt.support || info.Block() != tt.block || info.Flag() != tt.flag {
			t.Errorf("Lookup(%q) = %v block=%v flag=%v, want %v block=%v flag=%v",
				tt.name, info.Support, info.Block(), info.Flag(), tt.support, tt.block, tt.flag)
		}
	}
}

func TestDirectiveSupportByArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want Support
	}{
		{"ssl_verify_client", []string{"on"}, Implemented},
		{"ssl_ocsp", []string{"on"}, Implemented},
		{"ssl_reject_handshake", []string{"on"}, Implemented},
		{"ssl_conf_command", []string{"a", "b"}, Refused},
		{"disable_symlinks", []string{"on"}, Implemented},
		{"disable_symlinks", []string{"off"}, Implemented},
		{"auth_request", []string{"/auth"}, Implemented},
		{"fastcgi_pass", []string{"127.0.0.1:9000"}, UnsupportedContent},
		{"root", []string{"/srv"}, Implemented},
	}
	for _, tt := range tests {
		d := &Directive{Name: tt.name, Args: tt.args}
		if got := d.Support(); got != tt.want {
			t.Errorf("%s %v: Support() = %v, want %v", tt.name, tt.args, got, tt.want)
		}
	}
}

// nginxOracle returns the path of real nginx with the Lua module, or skips.
func nginxOracle(t *testing.T) string {
	t.Helper()
	for _, f := range []string{"/usr/sbin/nginx", "/usr/lib/nginx/modules/ngx_http_lua_module.so", "/usr/lib/nginx/modules/ndk_http_module.so"} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing and CI=true", f)
			}
			t.Skipf("%s missing", f)
		}
	}
	return "/usr/sbin/nginx"
}

var nginxEmerg = regexp.MustCompile(`\[(?:emerg|crit|alert|error)\] (?:\d+#\d+: )?(.*)`)

// nginxCheck runs `nginx -t` on text (as dir/nginx.conf) and returns "ok"
// or its first error, with dir removed.
func nginxCheck(t *testing.T, nginx, dir, text string) string {
	t.Helper()
	main := filepath.Join(dir, "nginx.conf")
	writeFile(t, main, text)
	out, err := exec.Command(nginx, "-t", "-p", dir+"/", "-c", main).CombinedOutput()
	if err == nil {
		return "ok"
	}
	m := nginxEmerg.FindSubmatch(out)
	if m == nil {
		return "failed: " + string(out)
	}
	return strings.ReplaceAll(string(m[1]), dir+"/", "")
}

func parseCheck(dir, text string) string {
	_, err := ParseString(filepath.Join(dir, "nginx.conf"), text, ParseOptions{})
	if err == nil {
		return "ok"
	}
	return strings.ReplaceAll(err.Error(), dir+"/", "")
}

// oracleHeader starts every probe config, like the syntax cases.
const oracleHeader = "pid {{DIR}}/nginx.pid;\nerror_log {{DIR}}/error.log;\n" +
	"load_module /usr/lib/nginx/modules/ndk_http_module.so;\n" +
	"load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\nevents {}\n"

// notInDebianBuild are table entries real nginx here cannot check: modules
// not built or not loaded, third-party modules, the websockify module, and
// the newer `http2`.
func notInDebianBuild(name string) bool {
	for _, p := range []string{"geoip_", "perl", "xslt_", "image_filter", "upload_progress", "track_uploads",
		"report_uploads", "more_", "websockify_", "google_perftools"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == "http2" || name == "stream" || name == "mail"
}

// TestFlagDuplicatesMatchNginx repeats every on/off directive in one block
// and checks that Parse complains exactly when nginx does, in nginx's words.
func TestFlagDuplicatesMatchNginx(t *testing.T) {
	nginx := nginxOracle(t)
	for _, name := range Directives() {
		info, _ := Lookup(name)
		if !info.Flag() || notInDebianBuild(name) || info.Support == Refused {
			continue
		}
		var wrap func(string) string
		switch {
		case info.allowedIn(ctxHTTPLoc):
			wrap = func(s string) string { return "http {\nserver {\nlocation / {\n" + s + "}\n}\n}\n" }
		case info.allowedIn(ctxHTTPSrv):
			wrap = func(s string) string { return "http {\nserver {\n" + s + "}\n}\n" }
		case info.allowedIn(ctxHTTPMain):
			wrap = func(s string) string { return "http {\n" + s + "}\n" }
		case info.allowedIn(ctxMain):
			wrap = func(s string) string { return s }
		default:
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			text := strings.ReplaceAll(oracleHeader, "{{DIR}}", dir) + wrap(name+" on;\n"+name+" off;\n")
			want := nginxCheck(t, nginx, dir, text)
			if !strings.Contains(want, "is duplicate") {
				// Only the duplicate rule is under test here: other failures
				// (a directive needing more setup) say nothing about it.
				want = "ok"
			}
			got := parseCheck(dir, text)
			if strings.Contains(got, "is not supported by ngxsockify") {
				got = "ok"
			}
			if got != want {
				t.Errorf("\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestSlotDuplicatesMatchNginx checks the directives Parse reports as
// duplicate by name (dupSlots) against nginx, in the contexts given.
func TestSlotDuplicatesMatchNginx(t *testing.T) {
	nginx := nginxOracle(t)
	loc := func(s string) string { return "http {\nserver {\nlocation / {\n" + s + "}\n}\n}\n" }
	srv := func(s string) string { return "http {\nserver {\n" + s + "}\n}\n" }
	http := func(s string) string { return "http {\n" + s + "}\n" }
	main := func(s string) string { return s }
	tests := []struct {
		name string
		wrap func(string) string
		body string
	}{
		{"root", loc, "root /a;\nroot /b;\n"},
		{"alias", loc, "alias /a/;\nalias /b/;\n"},
		{"alias then root", loc, "alias /a/;\nroot /b;\n"},
		{"client_max_body_size", loc, "client_max_body_size 1m;\nclient_max_body_size 2m;\n"},
		{"client_body_buffer_size", loc, "client_body_buffer_size 8k;\nclient_body_buffer_size 16k;\n"},
		{"keepalive_timeout", loc, "keepalive_timeout 5;\nkeepalive_timeout 6;\n"},
		{"default_type", loc, "default_type a/b;\ndefault_type c/d;\n"},
		{"server_tokens", loc, "server_tokens on;\nserver_tokens off;\n"},
		{"log_not_found", loc, "log_not_found on;\nlog_not_found off;\n"},
		{"satisfy", loc, "satisfy all;\nsatisfy any;\n"},
		{"auth_basic", loc, "auth_basic x;\nauth_basic y;\n"},
		{"auth_basic_user_file", loc, "auth_basic_user_file /x;\nauth_basic_user_file /y;\n"},
		{"ssl_ciphers", srv, "ssl_ciphers HIGH;\nssl_ciphers LOW;\n"},
		{"ssl_session_timeout", srv, "ssl_session_timeout 5m;\nssl_session_timeout 6m;\n"},
		{"resolver_timeout", loc, "resolver_timeout 5s;\nresolver_timeout 6s;\n"},
		{"expires", loc, "expires 1h;\nexpires 2h;\n"},
		{"lua_package_path", http, "lua_package_path '/a/?.lua;;';\nlua_package_path '/b/?.lua;;';\n"},
		{"lua_package_cpath", http, "lua_package_cpath '/a/?.so;;';\nlua_package_cpath '/b/?.so;;';\n"},
		{"init_by_lua", http, "init_by_lua_block { a = 1 }\ninit_by_lua 'b = 2';\n"},
		{"init_worker_by_lua", http, "init_worker_by_lua 'a = 1';\ninit_worker_by_lua_block { b = 2 }\n"},
		{"rewrite_by_lua", loc, "rewrite_by_lua_block { a = 1 }\nrewrite_by_lua_file /x.lua;\n"},
		{"header_filter_by_lua", loc, "header_filter_by_lua 'a = 1';\nheader_filter_by_lua 'b = 2';\n"},
		{"log_by_lua", loc, "log_by_lua_block { a = 1 }\nlog_by_lua_block { b = 2 }\n"},
		{"set_by_lua twice is fine", loc, "set_by_lua $a 'return 1';\nset_by_lua $b 'return 2';\n"},
		{"worker_processes", main, "worker_processes 1;\nworker_processes 2;\n"},
		{"pid", main, "pid /tmp/a.pid;\n"},
		{"ssl_protocols twice is fine", srv, "ssl_protocols TLSv1.2;\nssl_protocols TLSv1.3;\n"},
		{"index twice is fine", loc, "index a;\nindex b;\n"},
		{"add_header twice is fine", loc, "add_header A b;\nadd_header C d;\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			text := strings.ReplaceAll(oracleHeader, "{{DIR}}", dir) + tt.wrap(tt.body)
			want := nginxCheck(t, nginx, dir, text)
			if got := parseCheck(dir, text); got != want {
				t.Errorf("\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestDirectiveContextsMatchNginx puts every directive real nginx here
// knows in every context and checks that nginx says "is not allowed here"
// exactly where the table does. It runs with NGX_DIFF_TABLE=1 (about 5000
// nginx -t runs).
func TestDirectiveContextsMatchNginx(t *testing.T) {
	if os.Getenv("NGX_DIFF_TABLE") == "" {
		t.Skip("set NGX_DIFF_TABLE=1 to run")
	}
	nginx := nginxOracle(t)
	contexts := []struct {
		name string
		ctx  uint
		wrap func(string) string
	}{
		{"main", ctxMain, func(s string) string { return s }},
		{"events", ctxEvent, func(s string) string { return "events {\n" + s + "}\n" }},
		{"http", ctxHTTPMain, func(s string) string { return "http {\n" + s + "}\n" }},
		{"server", ctxHTTPSrv, func(s string) string { return "http {\nserver {\n" + s + "}\n}\n" }},
		{"location", ctxHTTPLoc, func(s string) string { return "http {\nserver {\nlocation / {\n" + s + "}\n}\n}\n" }},
		{"server if", ctxHTTPSif, func(s string) string { return "http {\nserver {\nif ($uri) {\n" + s + "}\n}\n}\n" }},
		{"location if", ctxHTTPLif, func(s string) string { return "http {\nserver {\nlocation / {\nif ($uri) {\n" + s + "}\n}\n}\n}\n" }},
		{"limit_except", ctxHTTPLmt, func(s string) string {
			return "http {\nserver {\nlocation / {\nlimit_except GET {\n" + s + "}\n}\n}\n}\n"
		}},
		{"upstream", ctxHTTPUps, func(s string) string { return "http {\nupstream u {\nserver 127.0.0.1;\n" + s + "}\n}\n" }},
	}
	for _, name := range Directives() {
		if notInDebianBuild(name) {
			continue
		}
		info, _ := Lookup(name)
		for _, c := range contexts {
			if name == "events" && c.ctx == ctxMain {
				continue // the probe already has one
			}
			t.Run(name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				events := "events {}\n"
				if c.ctx == ctxEvent {
					events = ""
				}
				header := strings.Replace(strings.ReplaceAll(oracleHeader, "{{DIR}}", dir), "events {}\n", events, 1)
				got := nginxCheck(t, nginx, dir, header+c.wrap(name+" x;\n"))
				if strings.HasPrefix(got, "unknown directive") {
					t.Skipf("not in this build: %s", got)
				}
				nginxAllows := !strings.Contains(got, `"`+name+`" directive is not allowed here`)
				if nginxAllows != info.allowedIn(c.ctx) {
					t.Errorf("table allows=%v, nginx: %s", info.allowedIn(c.ctx), got)
				}
			})
		}
	}
}

// TestDirectiveArityMatchesNginx gives every directive real nginx here
// knows 0 to 8 arguments, in a context where it is allowed, and checks
// that nginx says "invalid number of arguments" exactly where the table
// does. It runs with NGX_DIFF_TABLE=1.
func TestDirectiveArityMatchesNginx(t *testing.T) {
	if os.Getenv("NGX_DIFF_TABLE") == "" {
		t.Skip("set NGX_DIFF_TABLE=1 to run")
	}
	nginx := nginxOracle(t)
	contexts := []struct {
		ctx  uint
		wrap func(string) string
	}{
		{ctxHTTPLoc, func(s string) string { return "http {\nserver {\nlocation / {\n" + s + "}\n}\n}\n" }},
		{ctxHTTPSrv, func(s string) string { return "http {\nserver {\n" + s + "}\n}\n" }},
		{ctxHTTPMain, func(s string) string { return "http {\n" + s + "}\n" }},
		{ctxHTTPUps, func(s string) string { return "http {\nupstream u {\nserver 127.0.0.1;\n" + s + "}\n}\n" }},
		{ctxMain, func(s string) string { return s }},
		{ctxEvent, func(s string) string { return "events {\n" + s + "}\n" }},
	}
	for _, name := range Directives() {
		if notInDebianBuild(name) || name == "events" {
			continue
		}
		info, _ := Lookup(name)
		for _, c := range contexts {
			mask, ok := info.maskFor(c.ctx)
			if !ok {
				continue
			}
			for n := 0; n <= 8; n++ {
				t.Run(name+"/"+strconv.Itoa(n), func(t *testing.T) {
					t.Parallel()
					dir := t.TempDir()
					line := name + strings.Repeat(" on", n)
					if mask&confBlock != 0 {
						line += " {\n}\n"
					} else {
						line += ";\n"
					}
					header := strings.ReplaceAll(oracleHeader, "{{DIR}}", dir)
					if c.ctx == ctxEvent {
						header = strings.Replace(header, "events {}\n", "", 1)
					}
					got := nginxCheck(t, nginx, dir, header+c.wrap(line))
					if strings.HasPrefix(got, "unknown directive") {
						t.Skipf("not in this build: %s", got)
					}
					nginxOK := !strings.Contains(got, `invalid number of arguments in "`+name+`" directive`)
					if nginxOK != arityOK(mask, n) {
						t.Errorf("table arity ok=%v, nginx: %s", arityOK(mask, n), got)
					}
				})
			}
			break
		}
	}
}
