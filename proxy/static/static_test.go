package static

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"ngxsockify/ngxlog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// makeTree builds the served directory with fixed modification times.
func makeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"dir/file.txt":   "hello world\n",
		"dir/a.JS":       "x",
		"dir/empty.css":  "",
		"dir/vnc.html":   "<html>vnc</html>\n",
		"dir/app.wasm":   "\x00asm",
		"dir/noext":      "noext",
		"dir/x&<y>.html": "",
		"dir/" + strings.Repeat("a", 60) + ".txt":            "long",
		"dir/" + strings.Repeat("é", 55) + ".txt":            "utf",
		"dir/punct !\"#$%'()*+,-.:;=?@[]^_`{|}~.txt":         "p",
		"dir/sub/inner.json":                                 `{"a":1}`,
		"dir/" + "long" + strings.Repeat("b", 55) + "/x.svg": "<svg/>",
		"dir/sp ace/x.png":                                   "png",
		"dir/.hidden":                                        "h",
		"dir/exactly" + strings.Repeat("c", 39) + ".js":      "50 chars",
		"dir/" + strings.Repeat("d", 49) + "/f":              "dir name with slash is 50",
		"big.bin":                                            strings.Repeat("0123456789", 500),
	}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mt, mt)
		mt = mt.Add(97 * time.Minute)
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if d.IsDir() {
			os.Chtimes(p, mt, mt)
		}
		return nil
	})
	return root
}

func TestContentType(t *testing.T) {
	tests := []struct {
		uri  string
		o    *Options
		want string
	}{
		{"/vnc.html", nil, "text/html"},
		{"/logo.GIF", nil, "image/gif"},
		{"/app/ui.js", nil, "text/plain"}, // no types block: nginx's compiled-in three
		{"/app/ui.JS", &Options{Types: map[string]string{"js": "application/javascript"}}, "application/javascript"},
		{"/a.b/noext", nil, "text/plain"},
		{"/x.unknown", &Options{DefaultType: "application/octet-stream"}, "application/octet-stream"},
		{"/x.html", &Options{Types: map[string]string{"js": "text/javascript"}}, "text/plain"},
		{"/x.js", &Options{Types: map[string]string{"js": "text/javascript"}}, "text/javascript"},
	}
	for _, tc := range tests {
		if got := ContentType(tc.uri, tc.o); got != tc.want {
			t.Errorf("ContentType(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for errno, want := range map[syscall.Errno]int{syscall.ENOENT: 404, syscall.ENOTDIR: 404, syscall.EACCES: 403, syscall.EIO: 500} {
		var logged string
		o := &Options{Log: func(_ ngxlog.Level, msg string) { logged = msg }}
		if got := openError(o, "/p", &os.PathError{Op: "open", Path: "/p", Err: errno}); got != want {
			t.Errorf("%v: status %d, want %d", errno, got, want)
		}
		if !strings.HasPrefix(logged, `open() "/p" failed (`) {
			t.Errorf("%v: log %q", errno, logged)
		}
	}
	root := makeTree(t)
	var logged string
	o := &Options{Log: func(_ ngxlog.Level, msg string) { logged = msg }}
	rec := httptest.NewRecorder()
	st, _ := Serve(rec, httptest.NewRequest("GET", "/missing", nil), root+"/missing", "/missing", o)
	if want := fmt.Sprintf(`open() "%s/missing" failed (2: No such file or directory)`, root); st != 404 || logged != want {
		t.Errorf("missing: %d %q, want 404 %q", st, logged, want)
	}
	st, _ = Serve(rec, httptest.NewRequest("GET", "/dir/", nil), root+"/dir/", "/dir/", o)
	if st != 403 || !strings.Contains(logged, "directory index of") {
		t.Errorf("directory without autoindex: %d %q", st, logged)
	}
}

// debianMimeTypes reads the types block of Debian's /etc/nginx/mime.types
// ("type ext ext;" lines), which the nginx side includes.
func debianMimeTypes(t *testing.T) map[string]string {
	data, err := os.ReadFile("/etc/nginx/mime.types")
	if err != nil {
		t.Skip(err)
	}
	types := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		if len(f) < 2 || strings.Contains(line, "{") {
			continue
		}
		for _, ext := range f[1:] {
			types[ext] = f[0]
		}
	}
	return types
}

// goStatic serves root like the nginx config of TestDifferentialStatic.
func goStatic(t *testing.T, root string) string {
	t.Helper()
	types := debianMimeTypes(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &Options{Etag: !strings.HasPrefix(r.URL.Path, "/noetag/"), Autoindex: strings.HasPrefix(r.URL.Path, "/dir/"), DefaultType: "text/plain", Types: types, AutoindexExactSize: true, MaxRanges: -1}
		st, _ := Serve(w, r, root+r.URL.Path, r.URL.Path, o)
		switch st {
		case 200, 206, 304:
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(st)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func startNginx(t *testing.T, root string) string {
	t.Helper()
	const bin = "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx required in CI: %v", err)
		}
		t.Skip("no nginx")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the 0700 temp dirs
	}
	conf := user + fmt.Sprintf(`pid %[1]s/pid; error_log %[1]s/error.log; events {}
http { access_log off; client_body_temp_path %[1]s/t; proxy_temp_path %[1]s/t; fastcgi_temp_path %[1]s/t; uwsgi_temp_path %[1]s/t; scgi_temp_path %[1]s/t;
include /etc/nginx/mime.types; default_type text/plain;
server { listen %[2]s; root %[3]s; index no-index-here; location /dir/ { autoindex on; } location /noetag/ { etag off; } } }`, dir, addr, root)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off; master_process off;")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if i > 200 {
			t.Fatalf("nginx did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type response struct {
	Status  int
	Headers map[string]string
	Body    string
}

var compared = []string{"Content-Type", "Content-Length", "Last-Modified", "ETag", "Accept-Ranges", "Content-Range"}

var boundaryRE = regexp.MustCompile(`\d{20}`)

func fetch(t *testing.T, addr, method, target string, hdr []string) response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	for _, h := range hdr {
		req += h + "\r\n"
	}
	io.WriteString(c, req+"\r\n")
	req2, _ := http.NewRequest(method, "http://x"+target, nil)
	resp, err := http.ReadResponse(bufio.NewReader(c), req2)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Headers: map[string]string{}}
	for _, k := range compared {
		if v := resp.Header.Get(k); v != "" {
			out.Headers[k] = boundaryRE.ReplaceAllString(v, "B")
		}
	}
	if resp.StatusCode < 300 {
		out.Body = boundaryRE.ReplaceAllString(string(body), "B")
	}
	if resp.StatusCode >= 300 { // error pages are the caller's; compare status and range headers only
		delete(out.Headers, "Content-Length")
		delete(out.Headers, "Content-Type")
	}
	return out
}

// TestDifferentialStatic sends the same requests to nginx and to Serve and
// compares status, the file headers and bodies.
func TestDifferentialStatic(t *testing.T) {
	root := makeTree(t)
	ngx := startNginx(t, root)
	ours := goStatic(t, root)
	fi, err := os.Stat(filepath.Join(root, "dir/file.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lm := fi.ModTime().UTC().Format(http.TimeFormat)
	etag := ETag(fi)
	type req struct {
		method, target string
		hdr            []string
	}
	reqs := []req{
		{"GET", "/dir/", nil},
		{"HEAD", "/dir/", nil},
		{"GET", "/dir/sub/", nil},
		{"GET", "/dir/sp%20ace/", nil},
		{"GET", "/dir/a%3Cb%26c%22d/", nil},
		{"GET", "/dir/sp%20ace/x.png", nil},
		{"GET", "/dir/x%26%3Cy%3E.html", nil},
		{"GET", "/dir/file.txt", nil},
		{"HEAD", "/dir/file.txt", nil},
		{"GET", "/dir/a.JS", nil},
		{"GET", "/dir/empty.css", nil},
		{"GET", "/dir/vnc.html", nil},
		{"GET", "/dir/app.wasm", nil},
		{"GET", "/dir/noext", nil},
		{"GET", "/dir/sub/inner.json", nil},
		{"GET", "/dir/missing", nil},
		{"GET", "/dir/file.txt/x", nil},
		{"GET", "/big.bin", nil},
		{"GET", "/dir/file.txt", []string{"If-Modified-Since: " + lm}},
		{"GET", "/dir/file.txt", []string{"If-Modified-Since: " + fi.ModTime().Add(time.Second).UTC().Format(http.TimeFormat)}},
		{"GET", "/dir/file.txt", []string{"If-Modified-Since: garbage"}},
		{"GET", "/dir/file.txt", []string{"If-None-Match: " + etag}},
		{"GET", "/dir/file.txt", []string{"If-None-Match: W/" + etag}},
		{"GET", "/dir/file.txt", []string{`If-None-Match: "x", ` + etag}},
		{"GET", "/dir/file.txt", []string{"If-None-Match: *"}},
		{"GET", "/dir/file.txt", []string{`If-None-Match: "x"`, "If-Modified-Since: " + lm}},
		{"GET", "/dir/file.txt", []string{"If-None-Match: " + etag, "If-Modified-Since: Thu, 01 Jan 2015 00:00:00 GMT"}},
		{"GET", "/dir/file.txt", []string{`If-Match: "x"`}},
		{"GET", "/dir/file.txt", []string{"If-Match: " + etag}},
		{"GET", "/dir/file.txt", []string{"If-Unmodified-Since: Fri, 02 Jan 2020 03:04:05 GMT"}},
		{"GET", "/dir/file.txt", []string{"If-Unmodified-Since: " + lm}},
		{"GET", "/dir/file.txt", []string{"Range: bytes=0-1", "If-Range: " + etag}},
		{"GET", "/dir/file.txt", []string{"Range: bytes=0-1", `If-Range: "zz"`}},
		{"GET", "/dir/file.txt", []string{"Range: bytes=0-1", "If-Range: " + lm}},
		{"GET", "/dir/file.txt", []string{"Range: bytes=0-1", "If-Range: Thu, 01 Jan 2015 00:00:00 GMT"}},
		{"HEAD", "/dir/file.txt", []string{"Range: bytes=2-5"}},
	}
	for _, r := range []string{"bytes=0-4", "bytes=-3", "bytes=6-", "bytes=5-2", "bytes=20-", "bytes=abc", "bytes=0-0,2-3",
		"bytes=0-100", "bytes= 1-2", "items=0-1", "bytes=0-1,", "bytes=-0", "bytes=11-11", "bytes=12-", "bytes=0-1,1-2",
		"bytes=3-4,0-1", "bytes=0-1,20-30", "bytes=0-1 , 3-4", "bytes=00-01", "bytes=1-2-3", "bytes=0-1,,3-4",
		"bytes=0-11,0-11", "bytes=-100", "BYTES=1-1", "bytes=99999999999999999999-"} {
		reqs = append(reqs, req{"GET", "/dir/file.txt", []string{"Range: " + r}})
	}
	for _, h := range [][]string{nil, {"If-Match: *"}, {`If-Match: "x"`}, {"If-None-Match: *"}, {`If-None-Match: "x"`},
		{"If-Modified-Since: " + lm}, {"Range: bytes=1-2", `If-Range: "x"`}} {
		reqs = append(reqs, req{"GET", "/noetag/f.txt", h})
	}
	reqs = append(reqs, req{"GET", "/dir/empty.css", []string{"Range: bytes=0-"}}, req{"GET", "/big.bin", []string{"Range: bytes=100-199,4000-"}})
	for _, rq := range reqs {
		want := fetch(t, ngx, rq.method, rq.target, rq.hdr)
		got := fetch(t, ours, rq.method, rq.target, rq.hdr)
		if strings.HasSuffix(rq.target, "/") { // nginx sends listings chunked
			delete(got.Headers, "Content-Length")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s %s %q (-nginx +ours):\n%s", rq.method, rq.target, rq.hdr, diff)
		}
	}
}

// TestDirectoryRedirect: a directory without its slash gets Location set
// and 301 returned for the caller to render.
func TestDirectoryRedirect(t *testing.T) {
	root := makeTree(t)
	rec := httptest.NewRecorder()
	st, n := Serve(rec, httptest.NewRequest("GET", "/dir?a=1", nil), root+"/dir", "/dir", &Options{})
	if st != 301 || n != 0 || rec.Header().Get("Location") != "/dir/?a=1" {
		t.Errorf("got %d %d Location %q", st, n, rec.Header().Get("Location"))
	}
}

func BenchmarkServe(b *testing.B) {
	root := b.TempDir()
	os.WriteFile(filepath.Join(root, "vnc.html"), []byte(strings.Repeat("x", 16<<10)), 0o644)
	for i := 0; i < 50; i++ {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("f%02d.js", i)), []byte("x"), 0o644)
	}
	o := &Options{Etag: true, Autoindex: true, AutoindexExactSize: true, MaxRanges: -1}
	cases := []struct{ name, uri string }{{"file16k", "/vnc.html"}, {"autoindex50", "/"}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest("GET", c.uri, nil)
			for b.Loop() {
				rec := httptest.NewRecorder()
				if st, _ := Serve(rec, req, root+c.uri, c.uri, o); st != 200 {
					b.Fatal(st)
				}
			}
		})
	}
}

// TestStatusAndSubrequest: a file sent with another status (an error
// page's) or as a subrequest's answer gets no 304, 412 or range, no
// Accept-Ranges, and, off 200/206/304, no Last-Modified; the ETag stays.
func TestStatusAndSubrequest(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/x.html"
	if err := os.WriteFile(path, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	lm := fi.ModTime().UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		status     int
		sub        bool
		wantStatus int
		wantLM     bool
		wantAR     bool
	}{
		{"plain", 0, false, http.StatusNotModified, true, false},
		{"error page", http.StatusNotFound, false, http.StatusOK, false, false},
		{"201", http.StatusCreated, false, http.StatusOK, false, false},
		{"subrequest", 0, true, http.StatusOK, true, false},
	} {
		for _, hdr := range [][2]string{{"If-Modified-Since", lm}, {"Range", "bytes=0-3"}, {"If-Match", `"nope"`}} {
			r := httptest.NewRequest("GET", "/x.html", nil)
			r.Header.Set(hdr[0], hdr[1])
			rec := httptest.NewRecorder()
			o := &Options{Etag: true, MaxRanges: -1, Status: tc.status, Subrequest: tc.sub}
			st, _ := Serve(rec, r, path, "/x.html", o)
			want := tc.wantStatus
			if tc.status == 0 && !tc.sub {
				want = map[string]int{"If-Modified-Since": 304, "Range": 206, "If-Match": 412}[hdr[0]]
			}
			if st != want {
				t.Errorf("%s, %s: status %d, want %d", tc.name, hdr[0], st, want)
			}
			if st != http.StatusOK {
				continue
			}
			if got := rec.Header().Get("Last-Modified") != ""; got != tc.wantLM {
				t.Errorf("%s, %s: Last-Modified %v, want %v", tc.name, hdr[0], got, tc.wantLM)
			}
			if got := rec.Header().Get("Accept-Ranges") != ""; got != tc.wantAR {
				t.Errorf("%s, %s: Accept-Ranges %v, want %v", tc.name, hdr[0], got, tc.wantAR)
			}
			if rec.Header().Get("ETag") == "" || rec.Body.String() != "0123456789" {
				t.Errorf("%s, %s: ETag %q, body %q", tc.name, hdr[0], rec.Header().Get("ETag"), rec.Body)
			}
		}
	}
}
