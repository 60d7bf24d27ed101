package nginxconf

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func loadHTTP(t *testing.T, body string) (*Config, error) {
	t.Helper()
	return LoadString("/etc/ngx/nginx.conf", "events {}\nhttp {\n"+body+"\n}\n", LoadOptions{Prefix: "/srv/p"})
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"unknown variable", `server { location / { return 200 "$nope"; } }`, `unknown "nope" variable in /etc/ngx/nginx.conf:3`},
		{"duplicate location", "server {\nlocation /a {}\nlocation /a {}\n}", `duplicate location "/a" in /etc/ngx/nginx.conf:5`},
		{"bad return code", `server { location / { return abc "x"; } }`, `invalid return code "abc" in /etc/ngx/nginx.conf:3`},
		{"bad rewrite flag", `server { rewrite ^ /x bogus; }`, `invalid parameter "bogus" in /etc/ngx/nginx.conf:3`},
		{"root then alias", "server { location /a {\nroot /x;\nalias /y;\n} }", `"alias" directive is duplicate, "root" directive was specified earlier in /etc/ngx/nginx.conf:5`},
		{"two access_by_lua", "server { location /a {\naccess_by_lua 'return';\naccess_by_lua_block { return }\n} }", `is duplicate in /etc/ngx/nginx.conf:5`},
		{"outside location", "server { location /a {\nlocation /b {}\n} }", `location "/b" is outside location "/a" in /etc/ngx/nginx.conf:4`},
		{"two default servers", "server { listen 127.0.0.1:81 default_server; }\nserver { listen 127.0.0.1:81 default_server; }", `a duplicate default server for 127.0.0.1:81 in /etc/ngx/nginx.conf:4`},
		{"bad listen port", `server { listen 127.0.0.1:99999; }`, `invalid port in "127.0.0.1:99999" of the "listen" directive in /etc/ngx/nginx.conf:3`},
		{"bad regex", `server { location ~ "(a" {} }`, `pcre2_compile() failed`},
		{"bad timeout", `websockify_read_timeout 5x;`, `"websockify_read_timeout" directive invalid value in /etc/ngx/nginx.conf:3`},
		{"websockify_pass twice", "server { location /w {\nwebsockify_pass a:1;\nwebsockify_pass b:2;\n} }", `"websockify_pass" directive is duplicate in /etc/ngx/nginx.conf:5`},
		{"named nested", "server { location /a {\nlocation @x {}\n} }", `named location "@x" can be on the server level only`},
		{"set of builtin", `server { set $uri x; }`, `the duplicate "uri" variable in /etc/ngx/nginx.conf:3`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadHTTP(t, tc.body)
			if err == nil {
				t.Fatalf("loaded; want error %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestCompileModel(t *testing.T) {
	cfg, err := loadHTTP(t, `
websockify_read_timeout 1h30m;
upstream vnc { server 127.0.0.1:5901 weight=2; server 127.0.0.1:5902 backup; }
server {
    listen 127.0.0.1:8080 default_server;
    server_name example.com *.example.org www.example.* ~^(?<sub>.+)\.test$;
    allow 127.0.0.1; deny all;
    location = /exact {}
    location ^~ /static/ { root /var/www; }
    location / { websockify_pass vnc; }
    location ~* \.png$ { add_header X-A "$sub" always; }
    location /ws { websockify_pass $arg_target; websockify_connect_timeout 5s; }
    location @named { return 204; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	if got := fmt.Sprint(srv.Listens[0].Addr, " ", srv.Listens[0].DefaultServer); got != "127.0.0.1:8080 true" {
		t.Errorf("listen = %s", got)
	}
	kinds := []NameKind{}
	for _, n := range srv.Names {
		kinds = append(kinds, n.Kind)
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]NameKind{NameExact, NameWildcardPrefix, NameWildcardSuffix, NameRegex}) {
		t.Errorf("name kinds = %v", kinds)
	}
	if len(srv.Root.Exact) != 1 || len(srv.Root.Prefix) != 3 || len(srv.Root.Regex) != 1 || len(srv.Named) != 1 {
		t.Fatalf("tree: exact %d prefix %d regex %d named %d", len(srv.Root.Exact), len(srv.Root.Prefix), len(srv.Root.Regex), len(srv.Named))
	}
	if p := srv.Root.Prefix; p[0].Path != "/static/" || p[1].Path != "/ws" || p[2].Path != "/" {
		t.Errorf("prefix order: %s %s %s", p[0].Path, p[1].Path, p[2].Path)
	}
	root := srv.Root.Prefix[2]
	if root.Conf.Websockify == nil || root.Conf.Websockify.Upstream == nil || root.Conf.Websockify.Upstream.Name != "vnc" {
		t.Errorf("websockify_pass vnc did not name the upstream")
	}
	if root.Conf.WSReadTimeout != 90*time.Minute {
		t.Errorf("inherited read timeout = %v", root.Conf.WSReadTimeout)
	}
	ws := srv.Root.Prefix[1].Conf
	if _, isConst := ws.Websockify.Target.Const(); isConst || ws.WSConnectTimeout != 5*time.Second {
		t.Errorf("ws location: const=%v connect=%v", isConst, ws.WSConnectTimeout)
	}
	if len(root.Conf.Access) != 2 || !root.Conf.Access[0].Allow || !root.Conf.Access[1].All {
		t.Errorf("allow/deny not inherited: %+v", root.Conf.Access)
	}
	if u := cfg.HTTP.Upstreams["vnc"]; len(u.Servers) != 2 || u.Servers[0].Weight != 2 || !u.Servers[1].Backup {
		t.Errorf("upstream = %+v", u)
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30": 30 * time.Second, "5s": 5 * time.Second, "1h30m": 90 * time.Minute,
		"500ms": 500 * time.Millisecond, "2d": 48 * time.Hour, "1w": 168 * time.Hour,
	} {
		got, err := ParseTime(in)
		if err != nil || got != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "5x", "s"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

// A server's own ssl_certificate replaces the http level's (it used to be
// added after it, so the http one was served); certificates and keys are
// inherited separately, as nginx merges them.
func TestServerCertificateReplacesHTTPs(t *testing.T) {
	cfg, err := loadHTTP(t, `
    ssl_certificate /h.crt;
    ssl_certificate_key /h.key;
    server { listen 127.0.0.1:8443 ssl; ssl_certificate /s.crt; ssl_certificate_key /s.key; }
    server { listen 127.0.0.1:8444 ssl; }
    server { listen 127.0.0.1:8445 ssl; ssl_certificate_key /k.key; }`)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]CertPair{
		{{Cert: "/s.crt", Key: "/s.key"}},
		{{Cert: "/h.crt", Key: "/h.key"}},
		{{Cert: "/h.crt", Key: "/k.key"}},
	}
	for i, s := range cfg.HTTP.Servers {
		if got := s.TLS.Certificates; fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("server %d: %v, want %v", i, got, want[i])
		}
	}
}
