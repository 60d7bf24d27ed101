package test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The black-box smuggling test: mutated requests (framing headers in many
// spellings and combinations, hop-by-hop headers, chunked bodies that hide
// a second request, encoded CR LF in the URI) go to nginx and to
// ngxsockify, each proxying to a recording backend through the request
// builder's paths (HTTP/1.0 and close, a URI part, a keep-alive pool,
// unbuffered chunked bodies, headers made from variables). For each request
// the client's statuses and the requests the backend parsed (request line,
// headers, body; bytes it could not parse) must be the same on both, and
// ngxsockify must never make the backend see more requests than the client
// sent.

// recordingBackend answers every request it can parse with 200 "ok" and
// records what it parsed, in order, across connections.
type recordingBackend struct {
	ln  net.Listener
	mu  sync.Mutex
	log []string
	at  time.Time // last record
	wg  sync.WaitGroup
	// idle is how long a connection may wait for its next request
	// (default 10s); set it before the first request.
	idle time.Duration
}

func startRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBackend{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *recordingBackend) add(s string) {
	s = strings.ReplaceAll(s, b.ln.Addr().String(), "BACKEND")
	b.mu.Lock()
	b.log = append(b.log, s)
	b.at = time.Now()
	b.mu.Unlock()
}

// take waits until nothing was recorded for quiet (at most 2s), then
// returns and clears the records.
func (b *recordingBackend) take(quiet time.Duration) []string {
	start := time.Now()
	deadline := start.Add(2 * time.Second)
	for {
		b.mu.Lock()
		idle := time.Since(b.at) >= quiet && time.Since(start) >= quiet
		if idle || time.Now().After(deadline) {
			out := b.log
			b.log = nil
			b.mu.Unlock()
			return out
		}
		b.mu.Unlock()
		time.Sleep(quiet / 4)
	}
}

func (b *recordingBackend) serve(c net.Conn) {
	br := bufio.NewReader(c)
	idle := b.idle
	if idle == 0 {
		idle = 10 * time.Second
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		req, err := http.ReadRequest(br)
		if err != nil {
			if n := br.Buffered(); n > 0 || !isCleanEnd(err) {
				rest, _ := br.Peek(min(n, 120))
				b.add(fmt.Sprintf("UNPARSABLE (%v): %q", err, rest))
			}
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // the body: past any client's wait
		body, err := io.ReadAll(req.Body)
		var lines []string
		for k, vs := range req.Header {
			for _, v := range vs {
				lines = append(lines, k+": "+v)
			}
		}
		lines = append(lines, "Host: "+req.Host)
		if req.ContentLength > 0 || req.Header.Get("Content-Length") != "" {
			lines = append(lines, "[length "+strconv.FormatInt(req.ContentLength, 10)+"]")
		}
		for _, te := range req.TransferEncoding {
			lines = append(lines, "[transfer-encoding "+te+"]")
		}
		sort.Strings(lines)
		rec := req.Method + " " + req.RequestURI + " " + req.Proto + " | " + strings.Join(lines, " | ") + " | body " + strconv.Quote(string(body))
		if err != nil {
			rec += " | BODY ERROR " + err.Error()
		}
		b.add(rec)
		if err != nil {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"); err != nil {
			return
		}
	}
}

func isCleanEnd(err error) bool {
	// an idle pooled connection that times out has sent nothing either
	return err == io.EOF || os.IsTimeout(err) || strings.Contains(err.Error(), "use of closed") || strings.Contains(err.Error(), "connection reset")
}

const proxyFuzzConf = `
upstream pool { server BACKEND; keepalive 4; }
server {
    listen 127.0.0.1:{{PORT}};
    keepalive_timeout 0;
    proxy_read_timeout 3s;
    location / { proxy_pass http://BACKEND; }
    location /u/ { proxy_pass http://BACKEND/replaced/; }
    location /k/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://pool; }
    location /s/ {
        proxy_request_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://pool;
    }
    location /h/ {
        proxy_set_header X-Uri $uri;
        proxy_set_header X-Args $args;
        proxy_set_header X-Te $http_transfer_encoding;
        proxy_pass http://BACKEND;
    }
    location /w/ {
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_pass http://BACKEND;
    }
}
`

// fuzzRequest builds the i-th mutated request of a seeded sequence.
func fuzzRequest(r *rand.Rand) string {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	methods := []string{"GET", "POST", "POST", "PUT", "DELETE", "OPTIONS"}
	paths := []string{"/a", "/u/a?x=1", "/k/a", "/k/b", "/s/a", "/s/b", "/h/a", "/w/a",
		"/h/a%0d%0aX-Injected:%20yes", "/u/%0d%0aX-Injected:%20yes", "/k/x%0aY:z", "/h/a?q=%0d%0aX:1",
		"/u/a/%2e%2e/b", "/k//a", "/u/a%20b", "/h/%00", "/a#frag"}
	framing := []string{
		"Content-Length: 5", "Content-Length: 0", "Content-Length: 40", "Content-Length: +5", "Content-Length:  5 ",
		"Content-Length: 5, 5", "Content-Length: 5\r\nContent-Length: 5", "Content-Length: 5\r\nContent-Length: 6",
		"Content-Length: 99999999999999999999", "Content-Length: -1", "Content-Length: 0x5",
		"Transfer-Encoding: chunked", "Transfer-Encoding: chunked", "Transfer-Encoding: Chunked",
		"Transfer-Encoding: chunked, identity", "Transfer-Encoding: identity, chunked", "Transfer-Encoding: xchunked",
		"Transfer-Encoding:\tchunked", "Transfer-Encoding : chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
		"Transfer-Encoding: identity", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding:chunked",
		"Content-Length: 5\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked\r\nContent-Length: 5",
	}
	extra := []string{
		"Connection: keep-alive, X-Secret", "X-Secret: s", "Keep-Alive: timeout=9", "TE: trailers", "Proxy-Connection: keep-alive",
		"Upgrade: websocket", "Connection: Upgrade", "Expect: 100-continue", "Trailer: X-T", "Host: evil.example",
		"X-Forwarded-For: 6.6.6.6", "Content_Length: 5", "Transfer_Encoding: chunked", "X-A: a\tb", "X-Empty:",
		"Cookie: a=b", "Cookie: c=d", "X-Long: " + strings.Repeat("l", 300), "Accept-Encoding: gzip",
	}
	bodies := []string{
		"", "hello", "5\r\nhello\r\n0\r\n\r\n", "5;ext=1\r\nhello\r\n0\r\n\r\n", "5\nhello\n0\n\n",
		"0\r\n\r\nGET /k/smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "hello" + "GET /k/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-T: t\r\n\r\n", "fffffffffffffffff1\r\nx\r\n0\r\n\r\n", "5\r\nhelloXX\r\n0\r\n\r\n",
		"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "-1\r\nx\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n",
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.%d\r\nHost: front\r\n", pick(methods), pick(paths), 1-r.IntN(5)/4)
	for n := r.IntN(3); n > 0; n-- {
		b.WriteString(pick(framing) + "\r\n")
	}
	for n := r.IntN(3); n > 0; n-- {
		b.WriteString(pick(extra) + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(pick(bodies))
	return b.String()
}

// fuzzAnswer is what one mutated request led to on one server.
type fuzzAnswer struct {
	Statuses []int    // the client's responses, in order (interim ones too)
	Backend  []string // what the backend parsed
}

func askFuzz(t *testing.T, s *Server, be *recordingBackend, raw string) fuzzAnswer {
	t.Helper()
	var a fuzzAnswer
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", s.Kind, err)
	}
	_ = c.SetDeadline(time.Now().Add(6 * time.Second))
	_, _ = io.WriteString(c, raw)
	all, _ := io.ReadAll(c) // keepalive_timeout 0: the server closes after its answer
	c.Close()
	br := bufio.NewReader(bytes.NewReader(all))
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		a.Statuses = append(a.Statuses, res.StatusCode)
		if res.StatusCode >= 200 {
			_, _ = io.Copy(io.Discard, res.Body)
		}
		res.Body.Close()
	}
	a.Backend = be.take(60 * time.Millisecond)
	return a
}

// TestProxySmugglingDifferential sends PROXY_FUZZ_N (default 100, about
// 40s) mutated requests from PROXY_FUZZ_SEED (default 1) to both servers.
func TestProxySmugglingDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("differential fuzzing skipped in -short mode")
	}
	n, seed := 100, uint64(1)
	if v, err := strconv.Atoi(os.Getenv("PROXY_FUZZ_N")); err == nil {
		n = v
	}
	if v, err := strconv.ParseUint(os.Getenv("PROXY_FUZZ_SEED"), 10, 64); err == nil {
		seed = v
	}
	p := startFuzzPair(t)
	r := rand.New(rand.NewPCG(seed, 7))
	differ := 0
	for i := 0; i < n; i++ {
		if p.compare(t, fmt.Sprintf("request %d", i), fuzzRequest(r)) {
			differ++
		}
	}
	t.Logf("%d mutated requests (seed %d), %d answered differently (tolerated ones are logged above)", n, seed, differ)
}

// fuzzPair is nginx and ngxsockify on proxyFuzzConf, each with its own
// recording backend.
type fuzzPair struct {
	ngx, ours *Server
	beN, beO  *recordingBackend
}

func startFuzzPair(t *testing.T) *fuzzPair {
	t.Helper()
	requireNginx(t)
	requireNgxsockify(t)
	p := &fuzzPair{beN: startRecordingBackend(t), beO: startRecordingBackend(t)}
	p.ngx = startNginx(t, strings.ReplaceAll(proxyFuzzConf, "BACKEND", p.beN.ln.Addr().String()))
	p.ours = startNgxsockify(t, strings.ReplaceAll(proxyFuzzConf, "BACKEND", p.beO.ln.Addr().String()))
	return p
}

// compare sends raw to both and reports a difference as an error (and
// returns true). Whatever nginx does too is its behaviour, kept: a header
// injected through a decoded $uri in proxy_set_header reaches nginx's
// backend as well (see the README). ngxsockify alone must never make its
// backend see a second request, an unparsable one, or a smuggled path.
func (p *fuzzPair) compare(t *testing.T, name, raw string) bool {
	t.Helper()
	a := askFuzz(t, p.ngx, p.beN, raw)
	b := askFuzz(t, p.ours, p.beO, raw)
	if len(b.Backend) > max(1, len(a.Backend)) {
		t.Errorf("%s: the backend saw %d requests from ngxsockify for one:\n%q\n%s", name, len(b.Backend), raw, strings.Join(b.Backend, "\n"))
	}
	for _, rec := range b.Backend {
		if (strings.Contains(rec, "smuggled") || strings.HasPrefix(rec, "UNPARSABLE")) && !slices.Contains(a.Backend, rec) {
			t.Errorf("%s: the backend saw from ngxsockify %s\nfor %q", name, rec, raw)
		}
	}
	diff := cmp.Diff(a, b)
	if diff == "" {
		return false
	}
	if why := tolerated(a, b); why != "" {
		t.Logf("%s %q: tolerated difference (%s):\n%s", name, raw, why, diff)
	} else {
		t.Errorf("%s %q differs (-nginx +ngxsockify):\n%s", name, raw, diff)
	}
	return true
}

// tolerated names the known differences that change nothing a backend
// acts on, or "" for any other:
//   - both refuse the request and neither backend sees anything, with
//     another status: nginx checks the URI's escapes (%00) before the
//     headers, ngxsockify after them;
//   - with proxy_request_buffering off, a chunked body sent framed
//     otherwise (see unframed), or one that goes bad after
//     its first chunk: nginx reads what already arrived before it connects
//     and refuses the request without a backend; ngxsockify has started
//     streaming, then closes, so its backend sees an unterminated chunked
//     body and the close (never a second request). The client gets the same
//     answer.
func tolerated(a, b fuzzAnswer) string {
	refused := func(st []int) bool { return len(st) > 0 && st[len(st)-1] >= 400 }
	if len(a.Backend) == 0 && len(b.Backend) == 0 && refused(a.Statuses) && refused(b.Statuses) {
		return "refused by both, another status"
	}
	if len(a.Backend) == 0 && len(b.Backend) == 1 && strings.Contains(b.Backend[0], "BODY ERROR") &&
		slices.Equal(a.Statuses, b.Statuses) {
		return "streamed body cut at a bad chunk"
	}
	if len(a.Backend) == 1 && len(b.Backend) == 1 && slices.Equal(a.Statuses, b.Statuses) &&
		unframed(a.Backend[0]) == unframed(b.Backend[0]) {
		return "streamed body framed otherwise"
	}
	return ""
}

// framing matches the framing parts of a backend record.
var framing = regexp.MustCompile(` \| (Content-Length: \d+|\[length \d+\]|\[transfer-encoding chunked\])`)

// unframed is a backend record without its framing: with
// proxy_request_buffering off, nginx sends a chunked body that had all
// arrived before it connected with a Content-Length, ngxsockify streams it
// chunked (the body the backend reads is the same).
func unframed(rec string) string { return framing.ReplaceAllString(rec, "") }

// TestProxyFramingVerdicts holds the verdicts the smuggling test found
// different, each checked against nginx: the headers nginx takes once (a
// second line is a 400, a second Transfer-Encoding included), no "100
// Continue" for a refused head, a chunk size refused at its first byte;
// and the $uri header injection nginx allows too.
func TestProxyFramingVerdicts(t *testing.T) {
	p := startFuzzPair(t)
	values := map[string]string{"Content-Length": "0", "Transfer-Encoding": "chunked", "Expect": "100-continue",
		"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT", "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
	for _, h := range []string{"Host", "Content-Length", "Transfer-Encoding", "Expect", "Authorization", "If-Modified-Since",
		"If-Unmodified-Since", "If-Match", "If-None-Match", "If-Range", "Content-Range", // once
		"Connection", "User-Agent", "Referer", "Content-Type", "Range", "TE", "Upgrade", "Via", "Keep-Alive",
		"X-Forwarded-For", "X-Real-IP", "Accept", "Cookie", "Depth", "Destination", "Overwrite", "Date"} {
		v := values[h]
		if v == "" {
			v = "v"
		}
		host := "Host: front\r\n"
		if h == "Host" {
			host = ""
		}
		body := ""
		if h == "Transfer-Encoding" {
			body = "0\r\n\r\n"
		}
		p.compare(t, "twice "+h, fmt.Sprintf("POST /k/a HTTP/1.1\r\n%s%s: %s\r\n%s: %s\r\n\r\n%s", host, h, v, h, v, body))
	}
	for _, raw := range []string{
		"POST /k/a HTTP/1.1\r\nHost: front\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n",
		"POST /k/a HTTP/1.1\r\nHost: front\r\nExpect: 100-continue\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"POST /k/a HTTP/1.1\r\nHost: front\r\nTransfer-Encoding: chunked\r\n\r\nhello",
		"GET /w/a HTTP/1.1\r\nHost: front\r\nTransfer-Encoding: chunked\r\nUpgrade: websocket\r\n\r\nhello",
		"POST /s/a HTTP/1.1\r\nHost: front\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n;x\r\n",
		"GET /h/a%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: front\r\n\r\n",
		"GET /h/a%0d%0a%0d%0aGET%20/smuggled%20HTTP/1.1%0d%0aHost:%20x%0d%0a HTTP/1.1\r\nHost: front\r\n\r\n",
		"GET /u/a%0d%0a%0d%0aGET%20/smuggled%20HTTP/1.1%0d%0aHost:%20x%0d%0a HTTP/1.1\r\nHost: front\r\n\r\n",
	} {
		p.compare(t, "verdict", raw)
	}
}

// TestProxyStaleKeepalive: a backend that closes its idle keep-alive
// connections sooner than the pool drops them (keepalive_timeout 60s).
// nginx watches pooled connections and never sends on a closed one; a
// streamed body (proxy_request_buffering off) cannot be sent twice, so
// ngxsockify must not pick such a connection either (it answered 502
// "Broken pipe" before proxy/upstream peeked at idle connections).
func TestProxyStaleKeepalive(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		be := startRecordingBackend(t)
		be.idle = 150 * time.Millisecond
		s := startServer(t, kind, ServerOptions{HTTP: strings.ReplaceAll(proxyFuzzConf, "BACKEND", be.ln.Addr().String())})
		for i, path := range []string{"/s/a", "/s/b", "/k/a", "/k/b", "/s/c"} {
			if i > 0 {
				time.Sleep(400 * time.Millisecond) // the backend has closed the pooled connection
			}
			a := askFuzz(t, s, be, "PUT "+path+" HTTP/1.1\r\nHost: front\r\nContent-Length: 5\r\n\r\nhello")
			if !slices.Equal(a.Statuses, []int{200}) || len(a.Backend) != 1 {
				t.Errorf("%s: %s after the backend closed the idle connection: %v %q\n%s", kind, path, a.Statuses, a.Backend, tail(s.ErrorLog(), 5))
			}
		}
	}
}

// TestProxyStreamedLastChunk: with proxy_request_buffering off, a chunked
// body whose data and last chunk come in one read from the client reach
// the backend in one write, as nginx sends its buffer (nginx-tests'
// proxy_request_buffering_chunked.t reads the backend's side once). Two
// writes (the data, then "0\r\n\r\n") let the backend's one read see only
// the data.
func TestProxyStreamedLastChunk(t *testing.T) {
	for _, kind := range []string{"nginx", "ngxsockify"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s := startServer(t, kind, ServerOptions{HTTP: `server { listen 127.0.0.1:{{PORT}}; proxy_request_buffering off;
    proxy_http_version 1.1; location / { proxy_pass http://` + ln.Addr().String() + `; } }`})
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Ports[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		be, err := ln.Accept()
		if err != nil {
			t.Fatalf("%s: no backend connection: %v", kind, err)
		}
		defer be.Close()
		be.SetReadDeadline(time.Now().Add(5 * time.Second))
		head := make([]byte, 4096)
		if _, err := be.Read(head); err != nil {
			t.Fatalf("%s: the head: %v", kind, err)
		}
		io.WriteString(c, "5\r\n56789\r\n4\r\nmany\r\n0\r\n\r\n")
		buf := make([]byte, 1024)
		n, err := be.Read(buf)
		if want := "9\r\n56789many\r\n0\r\n\r\n"; string(buf[:n]) != want {
			t.Errorf("%s: the backend's one read got %q (%v), want %q", kind, buf[:n], err, want)
		}
	}
}
