package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ngxsockify/nginxconf/vars"
)

// The verdicts are Debian nginx 1.22.1's (test/testdata/routing/gzip.case
// asks it the same).
func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		ae   string
		want bool
	}{
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"deflate, gzip", true},
		{"deflate,gzip;q=0", false},
		{"gzip;q=0", false},
		{"gzip; q=0.5", true},
		{"gzip;q=0.000", false},
		{"gzip;q=0.001", true},
		{"gzip;q=1.5", false},
		{"gzip;q=1", true},
		{"gzip;level=1", false},
		{"GZIP", true},
		{"x-gzip", false},
		{"gzipx", false},
		{"*", false},
		{"identity", false},
		{"br;q=1, gzip ;q=0.8", true},
		{"gzip;q=1.000", true},
		{"gzip;q=0.1234", false},
	}
	for _, tt := range tests {
		got := len(tt.ae) >= 4 && (strings.HasPrefix(tt.ae, "gzip,") || acceptsGzip(tt.ae))
		if got != tt.want {
			t.Errorf("Accept-Encoding %q: %v, want %v", tt.ae, got, tt.want)
		}
	}
}

func TestHeaderToken(t *testing.T) {
	tests := []struct {
		values []string
		name   string
		want   bool
	}{
		{[]string{"max-age=1, private"}, "private", true},
		{[]string{"no-cache=x"}, "no-cache", false},
		{[]string{"No-Cache "}, "no-cache", true},
		{[]string{"public", "no-store,x"}, "no-store", true},
		{[]string{"xprivate"}, "private", false},
	}
	for _, tt := range tests {
		if got := headerToken(tt.values, tt.name); got != tt.want {
			t.Errorf("headerToken(%q, %q) = %v, want %v", tt.values, tt.name, got, tt.want)
		}
	}
}

func TestGzipRatio(t *testing.T) {
	for _, tt := range []struct {
		in, out int64
		want    string
	}{{100, 50, "2.00"}, {2125, 1000, "2.13"}, {1999, 1000, "2.00"}, {1, 3, "0.33"}, {2, 3, "0.67"}, {995, 1000, "1.00"}} {
		if got := gzipRatio(tt.in, tt.out); got != tt.want {
			t.Errorf("gzipRatio(%d, %d) = %s, want %s", tt.in, tt.out, got, tt.want)
		}
	}
}

// TestGzipFlush: a flush sends everything written so far as a complete
// deflate sync point (a streamed response streams), and the end closes
// the stream; $gzip_ratio is set.
func TestGzipFlush(t *testing.T) {
	rec := httptest.NewRecorder()
	rq := &request{r: httptest.NewRequest("GET", "/", nil)}
	rq.v = vars.NewRequest(vars.NewRegistry(), rq.r)
	rq.w = &respWriter{w: rec}
	rq.w.gz = &gzipOut{rq: rq, level: 1, bufSize: 4096}
	rq.w.Write([]byte("DA"))
	rq.w.Flush()
	rq.w.Flush() // an empty flush is harmless (gzip_flush.t)
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, _ := io.ReadAtLeast(zr, buf, 2)
	if got := string(buf[:n]); got != "DA" {
		t.Fatalf("after the flush the client can read %q, want DA", got)
	}
	rq.w.Write([]byte("TA"))
	rq.gzipEnd()
	if got := gunzipString(t, rec.Body.Bytes()); got != "DATA" {
		t.Errorf("body %q, want DATA", got)
	}
	if rq.w.bytes != int64(rec.Body.Len()) {
		t.Errorf("bytes counted %d, sent %d", rq.w.bytes, rec.Body.Len())
	}
	if rq.v.GzipRatio == "" {
		t.Error("$gzip_ratio not set")
	}
}

func gunzipString(t testing.TB, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// novncJS is JavaScript of the size of noVNC's larger modules (~200 KB),
// not too repetitive.
func novncJS() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 200<<10; i++ {
		fmt.Fprintf(&b, "    _handleMessage%d(msg) {\n        if (this._rfbConnectionState === 'connected' && msg.length > %d) {\n            this._sock.rQshift32(%d); Log.Debug(\"message \" + %d);\n        }\n    }\n", i, i*7%1000, i%13, i)
	}
	return b.Bytes()
}

func gzipTestServer(tb testing.TB) (*Server, *http.Request, []byte) {
	dir := tb.TempDir()
	js := novncJS()
	if err := os.WriteFile(filepath.Join(dir, "rfb.js"), js, 0o644); err != nil {
		tb.Fatal(err)
	}
	s, ctx := newBenchServer(tb, `types { application/javascript js; }
server {
    listen 127.0.0.1:18080;
    root `+dir+`;
    gzip on;
    gzip_types application/javascript;
    gzip_vary on;
}`)
	req := httptest.NewRequest("GET", "http://localhost/rfb.js", nil).WithContext(ctx)
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	return s, req, js
}

func TestGzipStaticFile(t *testing.T) {
	s, req, js := gzipTestServer(t)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Vary") != "Accept-Encoding" ||
		w.Header().Get("Content-Length") != "" || !strings.HasPrefix(w.Header().Get("Etag"), `W/"`) {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if w.Body.Len() >= len(js)/3 {
		t.Errorf("compressed %d bytes into %d", len(js), w.Body.Len())
	}
	if got := gunzipString(t, w.Body.Bytes()); got != string(js) {
		t.Error("the body does not decompress to the file")
	}
	req.Header.Del("Accept-Encoding")
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Header().Get("Content-Encoding") != "" || w.Body.String() != string(js) {
		t.Errorf("without Accept-Encoding: %v", w.Header())
	}
}

// bodyDiscard is a ResponseWriter that keeps the headers and counts the
// body.
type bodyDiscard struct {
	h    http.Header
	code int
	n    int
}

func (d *bodyDiscard) Header() http.Header         { return d.h }
func (d *bodyDiscard) WriteHeader(code int)        { d.code = code }
func (d *bodyDiscard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkServeGzipJS serves a noVNC-sized JavaScript file compressed
// (gzip_comp_level 1): the compressors are pooled, so a request allocates
// little beyond what an uncompressed one does.
func BenchmarkServeGzipJS(b *testing.B) {
	s, req, js := gzipTestServer(b)
	d := &bodyDiscard{h: http.Header{}}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(d.h)
		d.n = 0
		s.ServeHTTP(d, req)
		if d.code != 200 || d.h.Get("Content-Encoding") != "gzip" {
			b.Fatalf("%d %v", d.code, d.h)
		}
	}
	b.ReportMetric(float64(d.n), "gzip-bytes")
}

// BenchmarkServePlainJS is the same request without Accept-Encoding.
func BenchmarkServePlainJS(b *testing.B) {
	s, req, js := gzipTestServer(b)
	req.Header.Del("Accept-Encoding")
	d := &bodyDiscard{h: http.Header{}}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(d.h)
		s.ServeHTTP(d, req)
		if d.code != 200 {
			b.Fatalf("%d", d.code)
		}
	}
}

// TestGunzipStreams: each sync-flushed piece of a gzip stream comes out
// decompressed as soon as it is written; the rest at the end.
func TestGunzipStreams(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	var pieces [][]byte
	for _, s := range []string{"hello ", "streamed ", "world"} {
		zw.Write([]byte(s))
		zw.Flush()
		pieces = append(pieces, bytes.Clone(z.Bytes()))
		z.Reset()
	}
	zw.Close()
	pieces = append(pieces, bytes.Clone(z.Bytes()))
	rq := &request{r: httptest.NewRequest("GET", "/", nil)}
	g := &gunzipper{rq: rq}
	var got []string
	for _, p := range pieces {
		got = append(got, string(g.write(p)))
	}
	got = append(got, string(g.end()))
	want := []string{"hello ", "streamed ", "world", "", ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pieces out %q, want %q", got, want)
	}
	if g.err != nil {
		t.Error(g.err)
	}
	rq.runCleanups() // stop after end is harmless
}

// TestGunzipStop: a request that ends before its body does ends the
// decompressor too.
func TestGunzipStop(t *testing.T) {
	rq := &request{r: httptest.NewRequest("GET", "/", nil)}
	g := &gunzipper{rq: rq}
	g.write([]byte{0x1f, 0x8b, 8, 0})
	rq.runCleanups()
	if !g.stopped {
		t.Error("not stopped")
	}
}
