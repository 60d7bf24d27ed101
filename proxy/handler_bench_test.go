package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// serveOnce runs one request through s as if it came on its first listener.
func newBenchServer(tb testing.TB, httpBody string) (*Server, context.Context) {
	tb.Helper()
	cfg, err := nginxconf.LoadString("/t/nginx.conf", "events {}\nhttp {\n"+httpBody+"\n}\n", nginxconf.LoadOptions{Prefix: "/t"})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg, Options{ErrorLog: NewErrorLog(discard{}, ngxlog.Err)})
	if err != nil {
		tb.Fatal(err)
	}
	st := s.state.Load()
	var spec bindSpec
	for _, b := range st.binds {
		spec = b
	}
	l := &listener{spec: spec}
	local, _ := net.ResolveTCPAddr("tcp", spec.addr)
	ctx := context.Context(&connCtx{Context: context.Background(), l: l})
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, net.Addr(local))
	return s, ctx
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkServeReturn measures the request path (server and location
// choice, rewrite phase, variables, response) for a `return 200 "$host|$uri|$arg_x"`.
func BenchmarkServeReturn(b *testing.B) {
	s, ctx := newBenchServer(b, `server {
    listen 127.0.0.1:18080;
    server_name vnc.example.com;
    location / { return 404; }
    location /api/ { set $a "$host|$uri"; return 200 "$a|$arg_x"; }
    location ~ \.png$ { return 403; }
}`)
	req := httptest.NewRequest("GET", "http://vnc.example.com/api/items?x=1", nil).WithContext(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkServeSeedHook measures the request path of the seed deployment's
// signed-URL location up to the access phase (the hook rejects the request
// with 403, so no tunnel is opened).
func BenchmarkServeSeedHook(b *testing.B) {
	s, ctx := newBenchServer(b, `server {
    listen 127.0.0.1:18080;
    location /websockify {
        set $vnc_addr '';
        access_by_lua '
            local args = ngx.req.get_uri_args()
            local t = tonumber(args.t)
            if not t or math.abs(ngx.time() - t) > 30 then
                return ngx.exit(ngx.HTTP_FORBIDDEN)
            end
            if ngx.md5("key" .. args.t .. args.ip .. ":" .. args.port .. "key") ~= args.sign then
                return ngx.exit(ngx.HTTP_FORBIDDEN)
            end
            ngx.var.vnc_addr = args.ip .. ":" .. args.port
        ';
        websockify_pass $vnc_addr;
    }
}`)
	req := httptest.NewRequest("GET", "http://localhost/websockify?ip=127.0.0.1&port=5901&t=0&sign=x", nil).WithContext(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 403 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkServeAccessLog is BenchmarkServeReturn's request with an
// access_log in nginx's combined format, to a file.
func BenchmarkServeAccessLog(b *testing.B) {
	dir := b.TempDir()
	s, ctx := newBenchServer(b, `server {
    listen 127.0.0.1:18080;
    server_name vnc.example.com;
    access_log `+dir+`/access.log;
    location /api/ { return 200 "ok"; }
}`)
	req := httptest.NewRequest("GET", "http://vnc.example.com/api/items?x=1", nil).WithContext(ctx)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
	req.Header.Set("Referer", "http://vnc.example.com/")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
