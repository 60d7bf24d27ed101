package nginxconf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProxyURL(t *testing.T) {
	tests := []struct {
		in   string
		want *ProxyURL
		err  string
	}{
		{in: "http://127.0.0.1:8081", want: &ProxyURL{Scheme: "http", Host: "127.0.0.1:8081", Port: "8081",
			Addr: "127.0.0.1:8081", Name: "127.0.0.1", ExplicitPort: true}},
		{in: "http://backend/x/", want: &ProxyURL{Scheme: "http", Host: "backend", Port: "80",
			Addr: "backend:80", Name: "backend", URI: "/x/", HasURI: true}},
		{in: "HTTPS://h?a=b", want: &ProxyURL{Scheme: "https", Host: "h", Port: "443",
			Addr: "h:443", Name: "h", URI: "/?a=b", HasURI: true}},
		{in: "http://[::1]:81/", want: &ProxyURL{Scheme: "http", Host: "[::1]:81", Port: "81",
			Addr: "[::1]:81", Name: "::1", ExplicitPort: true, URI: "/", HasURI: true}},
		{in: "http://unix:/run/b.sock:/p", want: &ProxyURL{Scheme: "http", Host: "localhost", Port: "80",
			Addr: "unix:/run/b.sock", Name: "unix:/run/b.sock", URI: "/p", HasURI: true}},
		{in: "http://unix:/run/b.sock", want: &ProxyURL{Scheme: "http", Host: "localhost", Port: "80",
			Addr: "unix:/run/b.sock", Name: "unix:/run/b.sock"}},
		{in: "ftp://x", err: "invalid URL prefix"},
		{in: "http://", err: `no host in upstream ""`},
		{in: "http://h:0", err: `invalid port in upstream "h:0"`},
		{in: "http://h:x/y", err: `invalid port in upstream "h:x/y"`},
	}
	for _, tt := range tests {
		got, err := ParseProxyURL(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: err %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestProxyCacheWarns: proxy_cache is not refused (the location is served)
// but warns that nothing is cached; `proxy_cache off` says nothing.
func TestProxyCacheWarns(t *testing.T) {
	cfg, err := loadHTTP(t, `proxy_cache_path /tmp/c keys_zone=one:1m;
server { listen 80; location / { proxy_pass http://127.0.0.1:8081; proxy_cache one; }
	location /off { proxy_pass http://127.0.0.1:8081; proxy_cache off; } }`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		`"proxy_cache_path" directive is ignored in /etc/ngx/nginx.conf:3`,
		`"proxy_cache" directive is ignored: ngxsockify caches no responses, every request is served by the backend in /etc/ngx/nginx.conf:4`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
