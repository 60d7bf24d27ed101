package test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Routing cases live in testdata/routing/*.case, one case per file:
//
//	# comment lines (only before the config)
//	#file www/a.txt some content     <- file created in the server's Dir
//	#exec www/run.sh                 <- executable file (mode 0755)
//	#dir www/sub                     <- directory
//	#symlink www/l a.txt             <- symbolic link to a.txt (relative to the link)
//	#owner www/a.txt 65534           <- chowned to that uid (the case skips unless root)
//	#compare Content-Type X-Frame-Options  <- response headers also compared
//	#spelling X-IP ETag                    <- and how their names are spelled
//	#gzfile www/a.js.gz some content <- file created gzip-compressed
//	#gunzip                          <- gzip-encoded bodies compared decompressed
//	#drain                           <- each answer read to the connection's close
//	#main thread_pool p threads=2;   <- a main-level line, before events {} (Lua cases)
//	<http{} body; {{PORT}} and {{DIR}} are expanded>
//	----
//	GET /path?x=1 | Host: a.test | X-Y: z | Cookie: a=1   => 200
//	@2 GET /                                               <- sent to {{PORT2}}
//	POST /form | Content-Type: text/plain <<< a=1&b=2      <- body after " <<< "
//
// Each request line is "METHOD TARGET [VERSION]", then optional headers after
// "|", then an optional body after " <<< ", then an optional "=> STATUS": the
// status real nginx must give (a guard that the case tests what its author
// meant; ngxsockify is compared with nginx, not with it). VERSION defaults to
// HTTP/1.1; "Host: localhost" is added when no Host header is given, unless
// VERSION is HTTP/1.0. "Connection: close" is always added, and a
// Content-Length for a body unless one is written. Blank lines and lines
// starting with "#" in the request part are ignored.
//
// Compared: status, Location, the #compare headers and the body, after
// replacing each server's own ports and directory with {{PORT}}... and
// {{DIR}} and dropping nginx's version from error pages.

const routingDir = "testdata/routing"

// routingTimeout bounds one request (connect, send, whole response).
const routingTimeout = 10 * time.Second

type routingCase struct {
	name     string
	http     string
	files    []routingFile
	requests []routingRequest
	headers  []string // extra response headers to compare (#compare)
	spelling []string // response headers whose spelling is compared (#spelling)
	main     []string // main-level lines (#main; the Lua cases use them)
}

type routingFile struct {
	path, content string
	exec, dir     bool
	gz            bool   // written gzip-compressed (#gzfile)
	link          string // a symbolic link to this (#symlink)
	owner         string // chown an earlier file to this uid (#owner)
}

type routingRequest struct {
	line       int    // line number in the .case file
	port       int    // index into Server.Ports (0 = {{PORT}})
	raw        string // bytes sent
	show       string // the request as written
	wantStatus int    // 0 = not pinned
	// gunzip (#gunzip): a body with "Content-Encoding: gzip" is compared
	// decompressed (the compressed bytes of two servers differ), marked
	// "<gunzipped>" so that whether it was compressed still counts
	gunzip bool
	// drain (#drain): the connection is read until the server closes it,
	// so a request's work after its response (mirror subrequests) is over
	// before the next request is sent
	drain bool
}

// routingResult is what is compared between the servers.
type routingResult struct {
	Status   int
	Location string
	Headers  map[string][]string // only those named by #compare
	Spelled  []string            // the spellings sent of the names #spelling lists, sorted
	Body     string
}

func loadRoutingCases(t *testing.T) []routingCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(routingDir, "*.case"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no cases in %s", routingDir)
	}
	var cases []routingCase
	for _, p := range paths {
		c, err := parseRoutingCase(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cases = append(cases, c)
	}
	return cases
}

func parseRoutingCase(path string) (routingCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return routingCase{}, err
	}
	c := routingCase{name: strings.TrimSuffix(filepath.Base(path), ".case")}
	lines := strings.Split(string(data), "\n")
	sep := -1
	for i, l := range lines {
		if strings.TrimRight(l, " \t\r") == "----" {
			sep = i
			break
		}
	}
	if sep < 0 {
		return c, errors.New(`no "----" separator line`)
	}
	var conf []string
	header, gunzip, drain := true, false, false
	for _, l := range lines[:sep] {
		if header && strings.HasPrefix(l, "#") {
			fields := strings.SplitN(l, " ", 3)
			switch fields[0] {
			case "#file", "#gzfile":
				if len(fields) < 2 {
					return c, fmt.Errorf("bad line %q", l)
				}
				content := ""
				if len(fields) == 3 {
					content = fields[2]
				}
				c.files = append(c.files, routingFile{path: fields[1], content: content, gz: fields[0] == "#gzfile"})
			case "#gunzip":
				gunzip = true
			case "#drain":
				drain = true
			case "#main":
				c.main = append(c.main, strings.TrimPrefix(l, "#main "))
			case "#exec":
				c.files = append(c.files, routingFile{path: fields[1], content: "#!/bin/sh\n", exec: true})
			case "#dir":
				c.files = append(c.files, routingFile{path: fields[1], dir: true})
			case "#symlink", "#owner":
				if len(fields) < 3 {
					return c, fmt.Errorf("bad line %q", l)
				}
				if fields[0] == "#symlink" {
					c.files = append(c.files, routingFile{path: fields[1], link: fields[2]})
				} else {
					c.files = append(c.files, routingFile{path: fields[1], owner: fields[2]})
				}
			case "#compare":
				c.headers = append(c.headers, strings.Fields(strings.TrimPrefix(l, "#compare"))...)
			case "#spelling":
				c.spelling = append(c.spelling, strings.Fields(strings.TrimPrefix(l, "#spelling"))...)
			}
			conf = append(conf, "") // keep line numbers of the config stable
			continue
		}
		header = false
		conf = append(conf, l)
	}
	c.http = strings.Join(conf, "\n")
	if !strings.Contains(c.http, "{{PORT}}") {
		return c, errors.New("config does not listen on {{PORT}}")
	}
	for i, l := range lines[sep+1:] {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r, err := parseRoutingRequest(l)
		if err != nil {
			return c, fmt.Errorf("line %d: %v", sep+2+i, err)
		}
		r.line = sep + 2 + i
		r.gunzip, r.drain = gunzip, drain
		c.requests = append(c.requests, r)
	}
	if len(c.requests) == 0 {
		return c, errors.New("no requests")
	}
	return c, nil
}

func parseRoutingRequest(l string) (routingRequest, error) {
	r := routingRequest{show: l}
	if i := strings.LastIndex(l, "=>"); i >= 0 {
		st, err := strconv.Atoi(strings.TrimSpace(l[i+2:]))
		if err != nil {
			return r, fmt.Errorf("bad expected status in %q", l)
		}
		r.wantStatus = st
		l = strings.TrimSpace(l[:i])
		r.show = l
	}
	if strings.HasPrefix(l, "@") {
		at, rest, _ := strings.Cut(l, " ")
		n, err := strconv.Atoi(at[1:])
		if err != nil || n < 1 || n > 9 {
			return r, fmt.Errorf("bad port selector %q (want @2 for {{PORT2}})", at)
		}
		r.port = n - 1
		l = rest
	}
	body, hasBody := "", false
	if i := strings.Index(l, " <<< "); i >= 0 {
		body, hasBody = l[i+len(" <<< "):], true
		l = strings.TrimSpace(l[:i])
	}
	parts := strings.Split(l, "|")
	reqLine := strings.Fields(parts[0])
	if len(reqLine) < 2 || len(reqLine) > 3 {
		return r, fmt.Errorf("want METHOD TARGET [VERSION], got %q", parts[0])
	}
	version := "HTTP/1.1"
	if len(reqLine) == 3 {
		version = reqLine[2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", reqLine[0], reqLine[1], version)
	hasHost, hasLength := false, false
	for _, h := range parts[1:] {
		h = strings.TrimSpace(h)
		if !strings.Contains(h, ":") {
			return r, fmt.Errorf("bad header %q", h)
		}
		lower := strings.ToLower(h)
		hasHost = hasHost || strings.HasPrefix(lower, "host:")
		hasLength = hasLength || strings.HasPrefix(lower, "content-length:")
		b.WriteString(h + "\r\n")
	}
	if !hasHost && version != "HTTP/1.0" {
		b.WriteString("Host: localhost\r\n")
	}
	if hasBody && !hasLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(body)
	r.raw = b.String()
	return r, nil
}

// routingMtime is the modification time of every file and directory a case
// creates, so that listings, Last-Modified and ETag are the same on both
// servers whatever the minute they were created in.
var routingMtime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// makeRoutingFiles creates the case's files under dir, all with routingMtime.
func makeRoutingFiles(t *testing.T, dir string, files []routingFile) {
	t.Helper()
	defer func() {
		for _, f := range files {
			top, _, _ := strings.Cut(f.path, "/")
			err := filepath.WalkDir(filepath.Join(dir, top), func(p string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type()&os.ModeSymlink != 0 {
					return nil // its target has its own entry
				}
				return os.Chtimes(p, routingMtime, routingMtime)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}()
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if f.link != "" {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if f.owner != "" {
			if os.Geteuid() != 0 {
				t.Skip("#owner needs root")
			}
			uid, err := strconv.Atoi(f.owner)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(p, uid, -1); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if f.dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if f.exec {
			mode = 0o755
		}
		content := []byte(f.content)
		if f.gz {
			content = gzipBytes(f.content)
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			t.Fatal(err)
		}
	}
}

var nginxVersionRE = regexp.MustCompile(`nginx/[0-9.]+`)

// ask sends r to s and returns the comparable result: the server's own port
// and Dir become {{PORT}} and {{DIR}}, nginx's version in error pages is
// dropped. A connection closed without a response (return 444) or a timeout
// is a result too (Status 0).
func ask(s *Server, r routingRequest, headers, spelling []string) routingResult {
	if r.port >= len(s.Ports) {
		return routingResult{Body: fmt.Sprintf("<case error: no {{PORT%d}}>", r.port+1)}
	}
	resp, err := rawRequestDrain(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports[r.port])), r.raw, routingTimeout, r.drain)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return routingResult{Body: "<closed without response>"}
		case errors.As(err, &ne) && ne.Timeout():
			return routingResult{Body: "<timeout>"}
		default:
			return routingResult{Body: "<error: " + err.Error() + ">"}
		}
	}
	norm := func(v string) string {
		v = strings.ReplaceAll(v, s.Dir, "{{DIR}}")
		for i := len(s.Ports) - 1; i >= 0; i-- {
			name := "{{PORT}}"
			if i > 0 {
				name = "{{PORT" + strconv.Itoa(i+1) + "}}"
			}
			v = strings.ReplaceAll(v, strconv.Itoa(s.Ports[i]), name)
		}
		return nginxVersionRE.ReplaceAllString(v, "nginx")
	}
	body := resp.Body
	if r.gunzip && body != "" && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		body = gunzipBody(body)
	}
	res := routingResult{
		Status:   resp.Status,
		Location: norm(resp.Header.Get("Location")),
		Body:     norm(body),
	}
	for _, h := range headers {
		if res.Headers == nil {
			res.Headers = map[string][]string{}
		}
		var vals []string
		for _, v := range resp.Header.Values(h) {
			vals = append(vals, norm(v))
		}
		res.Headers[h] = vals
	}
	for _, name := range resp.Names {
		for _, want := range spelling {
			if strings.EqualFold(name, want) {
				res.Spelled = append(res.Spelled, name)
			}
		}
	}
	sort.Strings(res.Spelled)
	return res
}

// compareServers sends every request of c to a and b and reports each
// difference. When pin is set, a's status must also match the "=> STATUS" of
// the request.
func compareServers(t *testing.T, c routingCase, a, b *Server, pin bool) {
	t.Helper()
	for _, r := range c.requests {
		ra, rb := ask(a, r, c.headers, c.spelling), ask(b, r, c.headers, c.spelling)
		where := fmt.Sprintf("%s/%s.case:%d %s", routingDir, c.name, r.line, r.show)
		if os.Getenv("ROUTING_SHOW") != "" {
			t.Logf("%s\n\t%s: %d %q %v %q", where, a.Kind, ra.Status, ra.Location, ra.Headers, ra.Body)
		}
		if pin && r.wantStatus != 0 && ra.Status != r.wantStatus {
			t.Errorf("%s: %s answered %d, the case expects %d (body %q)", where, a.Kind, ra.Status, r.wantStatus, ra.Body)
		}
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("%s: %s and %s differ (-%s +%s):\n%s", where, a.Kind, b.Kind, a.Kind, b.Kind, diff)
		}
	}
}

func startRouting(t *testing.T, kind string, c routingCase) *Server {
	t.Helper()
	s := startServer(t, kind, ServerOptions{HTTP: c.http})
	makeRoutingFiles(t, s.Dir, c.files)
	return s
}

// Set ROUTING_SHOW=1 to log every answer (to review what a case exercises).

// TestRoutingOracle runs every case on two nginx instances: nginx must answer
// each request with the pinned status, and the same way twice (so the cases
// hold nothing time- or process-dependent that could never match).
func TestRoutingOracle(t *testing.T) {
	requireNginx(t)
	for _, c := range loadRoutingCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := startRouting(t, "nginx", c)
			b := startRouting(t, "nginx", c)
			compareServers(t, c, a, b, true)
		})
	}
}

// TestRouting is the differential suite: each case runs on nginx and on
// ngxsockify, and every request must get the same status, Location and body.
func TestRouting(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	for _, c := range loadRoutingCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := startRouting(t, "nginx", c)
			b := startRouting(t, "ngxsockify", c)
			compareServers(t, c, a, b, false)
		})
	}
}

// TestRoutingCaseFormat checks the case parser on a small inline case.
func TestRoutingCaseFormat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.case")
	text := "#file www/a.txt hello there\n#exec www/run.sh\n#compare Content-Type X-A\n" +
		"server { listen 127.0.0.1:{{PORT}}; }\n----\n\n" +
		"GET /a?b=1 | Host: h.test | X-Y: z => 404\n@2 HEAD / HTTP/1.0\nPOST /p | X: y <<< a=1 | b\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parseRoutingCase(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []routingRequest{
		{line: 7, raw: "GET /a?b=1 HTTP/1.1\r\nHost: h.test\r\nX-Y: z\r\nConnection: close\r\n\r\n",
			show: "GET /a?b=1 | Host: h.test | X-Y: z", wantStatus: 404},
		{line: 8, port: 1, raw: "HEAD / HTTP/1.0\r\nConnection: close\r\n\r\n", show: "@2 HEAD / HTTP/1.0"},
		{line: 9, raw: "POST /p HTTP/1.1\r\nX: y\r\nHost: localhost\r\nContent-Length: 7\r\nConnection: close\r\n\r\na=1 | b", show: "POST /p | X: y <<< a=1 | b"},
	}
	if diff := cmp.Diff(want, c.requests, cmp.AllowUnexported(routingRequest{})); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	wantFiles := []routingFile{{path: "www/a.txt", content: "hello there"}, {path: "www/run.sh", content: "#!/bin/sh\n", exec: true}}
	if diff := cmp.Diff(wantFiles, c.files, cmp.AllowUnexported(routingFile{})); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Content-Type", "X-A"}, c.headers); diff != "" {
		t.Errorf("compared headers (-want +got):\n%s", diff)
	}
	if c.http != "\n\n\nserver { listen 127.0.0.1:{{PORT}}; }" {
		t.Errorf("config %q", c.http)
	}
	for _, bad := range []string{"server {}\n----\nGET /\n", "server { listen {{PORT}}; }\nGET /\n", "server { listen {{PORT}}; }\n----\nGET\n", "server { listen {{PORT}}; }\n----\n@x GET /\n"} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := parseRoutingCase(p); err == nil {
			t.Errorf("parseRoutingCase(%q) accepted a bad case", bad)
		}
	}
}

// gzipBytes compresses s (deterministically: no name, no time).
func gzipBytes(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// gunzipBody is a gzip-encoded body as #gunzip compares it: decompressed
// and marked, or marked as not valid gzip.
func gunzipBody(body string) string {
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		return "<not gzip: " + err.Error() + ">"
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return "<bad gzip: " + err.Error() + ">"
	}
	return "<gunzipped>" + string(out)
}

// TestRoutingGunzipOption checks #gunzip and #gzfile: the requests of a
// case with #gunzip compare gzip bodies decompressed, #gzfile writes its
// content compressed.
func TestRoutingGunzipOption(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.case")
	text := "#gunzip\n#gzfile www/a.js.gz hello gz\nserver { listen 127.0.0.1:{{PORT}}; }\n----\nGET /a.js\nGET /b\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parseRoutingCase(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.requests {
		if !r.gunzip {
			t.Errorf("%s: gunzip not set", r.show)
		}
	}
	if len(c.files) != 1 || !c.files[0].gz || c.files[0].content != "hello gz" {
		t.Fatalf("files %+v", c.files)
	}
	if got := gunzipBody(string(gzipBytes("hello gz"))); got != "<gunzipped>hello gz" {
		t.Errorf("gunzipBody = %q", got)
	}
	if got := gunzipBody("plain"); !strings.HasPrefix(got, "<not gzip") {
		t.Errorf("gunzipBody of plain text = %q", got)
	}
	if bytes.Equal(gzipBytes("x"), gzipBytes("y")) || !bytes.Equal(gzipBytes("x"), gzipBytes("x")) {
		t.Error("gzipBytes is not deterministic per content")
	}
}

// TestRawRequestDrain: with drain, a request returns only once the server
// closed the connection after its response (#drain); without, at the
// response's end.
func TestRawRequestDrain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const hold = 300 * time.Millisecond
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 1024))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(hold)
			}()
		}
	}()
	for _, drain := range []bool{false, true} {
		start := time.Now()
		r, err := rawRequestDrain(ln.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5*time.Second, drain)
		took := time.Since(start)
		if err != nil || r.Body != "ok" {
			t.Fatalf("drain %v: %v %v", drain, r, err)
		}
		if drain != (took >= hold) {
			t.Errorf("drain %v: returned after %v (the server closes after %v)", drain, took, hold)
		}
	}
}
