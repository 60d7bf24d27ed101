package nginxconf

import (
	"slices"
	"testing"
	"time"
)

func TestTargetRules(t *testing.T) {
	cases := []struct {
		rule  string
		ok    bool
		allow []string
		deny  []string
	}{
		{"10.0.0.0/8:5900-5999", true, []string{"10.1.2.3:5900", "10.255.0.1:5999"}, []string{"10.1.2.3:22", "11.0.0.1:5900", "unix:/x"}},
		{"127.0.0.1", true, []string{"127.0.0.1:1", "127.0.0.1:65535"}, []string{"127.0.0.2:5900"}},
		{"127.0.0.1:5901", true, []string{"127.0.0.1:5901"}, []string{"127.0.0.1:5900"}},
		{"[::1]:5900", true, []string{"[::1]:5900"}, []string{"[::2]:5900", "127.0.0.1:5900"}},
		{"[fd00::/8]:5900-5901", true, []string{"[fd12::1]:5901"}, []string{"[fe80::1]:5900"}},
		{"unix:/run/vnc/", true, []string{"unix:/run/vnc/a.sock", "unix:/run/vnc/x/../b.sock"}, []string{"unix:/run/vnc/../etc/x", "unix:/run/vncx/a", "unix:/run/vnc", "127.0.0.1:5900"}},
		{"unix:/run/one.sock", true, []string{"unix:/run/one.sock"}, []string{"unix:/run/one.sock2", "unix:/run/other.sock"}},
		{"::1", false, nil, nil},        // IPv6 needs brackets
		{"10.0.0.1/8", false, nil, nil}, // host bits set
		{"10.0.0.0/8:0", false, nil, nil},
		{"10.0.0.0/8:6000-5900", false, nil, nil},
		{"10.0.0.0/8:70000", false, nil, nil},
		{"vnc.example.com:5900", false, nil, nil},
		{"unix:relative.sock", false, nil, nil},
		{"[::1", false, nil, nil},
	}
	for _, tc := range cases {
		r, ok := parseTargetRule(tc.rule)
		if ok != tc.ok {
			t.Errorf("%q: parsed %v, want %v", tc.rule, ok, tc.ok)
			continue
		}
		for _, a := range tc.allow {
			if !r.Allows(a) {
				t.Errorf("%q does not allow %s", tc.rule, a)
			}
		}
		for _, a := range tc.deny {
			if r.Allows(a) {
				t.Errorf("%q allows %s", tc.rule, a)
			}
		}
	}
}

func TestWebsockifyAllowDirective(t *testing.T) {
	cfg, err := loadHTTP(t, `
    websockify_allow 10.0.0.0/8:5900-5999 unix:/run/vnc/;
    server {
        listen 127.0.0.1:8080;
        location /a { websockify_pass 10.0.0.1:5900; }
        location /b { websockify_allow 127.0.0.1:5900; websockify_pass 127.0.0.1:5900; }
    }`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := srv.Root.Prefix[0].Conf, srv.Root.Prefix[1].Conf
	if len(a.WSAllow) != 2 || len(b.WSAllow) != 1 || b.WSAllow[0].Allows("10.0.0.1:5900") {
		t.Errorf("inherited %d rules, own list %d rules (want 2, and 1 replacing them)", len(a.WSAllow), len(b.WSAllow))
	}
	_, err = loadHTTP(t, "server { listen 127.0.0.1:8080; websockify_allow 10.0.0.0/8:99999; }")
	if err == nil || err.Error() != `invalid parameter "10.0.0.0/8:99999" in /etc/ngx/nginx.conf:3` {
		t.Errorf("bad range: %v", err)
	}
}

func TestWebsockifyPingIntervalDirective(t *testing.T) {
	cfg, err := loadHTTP(t, `
    websockify_ping_interval 30s;
    server {
        listen 127.0.0.1:8080;
        location /a { websockify_pass 10.0.0.1:5900; }
        location /b { websockify_ping_interval off; websockify_pass 10.0.0.1:5900; }
        location /c { websockify_ping_interval 5s; websockify_pass 10.0.0.1:5900; }
    }
    server { listen 127.0.0.1:8081; websockify_ping_interval 0; }`)
	if err != nil {
		t.Fatal(err)
	}
	loc := cfg.HTTP.Servers[0].Root.Prefix
	got := []time.Duration{loc[0].Conf.WSPingInterval, loc[1].Conf.WSPingInterval, loc[2].Conf.WSPingInterval,
		cfg.HTTP.Servers[1].Conf.WSPingInterval}
	if want := []time.Duration{30 * time.Second, 0, 5 * time.Second, 0}; !slices.Equal(got, want) {
		t.Errorf("ping intervals %v, want %v (inherited, off, own, 0)", got, want)
	}
	_, err = loadHTTP(t, "server { listen 127.0.0.1:8080; websockify_ping_interval soon; }")
	if err == nil || err.Error() != `"websockify_ping_interval" directive invalid value in /etc/ngx/nginx.conf:3` {
		t.Errorf("bad value: %v", err)
	}
}

func TestStatusDirectives(t *testing.T) {
	cfg, err := loadHTTP(t, `
    server {
        listen 127.0.0.1:8080;
        stub_status;
        location /m { prometheus_metrics; location /m/in { } }
    }`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	m := srv.Root.Prefix[0]
	if !srv.Conf.StubStatus || m.Conf.StubStatus || !m.Conf.PrometheusMetrics ||
		m.Nested.Prefix[0].Conf.PrometheusMetrics {
		t.Errorf("content handlers are not inherited: server %v, /m %v %v, /m/in %v", srv.Conf.StubStatus,
			m.Conf.StubStatus, m.Conf.PrometheusMetrics, m.Nested.Prefix[0].Conf.PrometheusMetrics)
	}
	_, err = loadHTTP(t, "server { listen 127.0.0.1:8080; prometheus_metrics; }")
	if err == nil || err.Error() != `"prometheus_metrics" directive is not allowed here in /etc/ngx/nginx.conf:3` {
		t.Errorf("prometheus_metrics in server: %v", err)
	}
}
