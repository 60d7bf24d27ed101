package test

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The proxy_pass differential tests: nginx and ngxsockify proxy the same
// requests to one Go backend (backendProxy), which records what each
// received and answers as the request path says (garbage, a too big
// header, nothing, a slow or a cut response). Status, chosen headers, body,
// what the backend received and the error-log words must agree.

// proxyBackend is a scripted HTTP backend.
type proxyBackend struct {
	ln      net.Listener
	release chan struct{} // closed by the test: /stream may send its end
	wg      sync.WaitGroup
	conns   atomic.Int64 // connections accepted
}

func startProxyBackend(t *testing.T) *proxyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &proxyBackend{ln: ln, release: make(chan struct{})}
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
				c.SetDeadline(time.Now().Add(10 * time.Second))
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-b.release:
		default:
			close(b.release)
		}
		b.wg.Wait()
	})
	return b
}

func (b *proxyBackend) addr() string { return b.ln.Addr().String() }

// serve reads one request and answers it. The echo answer is the request
// line, the header lines sorted (client headers reach a backend in an order
// net/http does not keep) and the body.
func (b *proxyBackend) serve(c net.Conn) {
	id := b.conns.Add(1)
	rec := &headRecorder{r: c}
	br := bufio.NewReader(rec)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if strings.HasSuffix(req.URL.Path, "/rawecho") { // the head as received: order and spelling
		head, _, _ := strings.Cut(rec.buf.String(), "\r\n\r\n")
		head = strings.ReplaceAll(head, "\r\n", "\n")
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(head), head)
		return
	}
	for strings.Contains(req.URL.Path, "/ka/") { // keep-alive: answers on this connection until told to close
		io.ReadAll(req.Body)
		switch {
		case strings.HasSuffix(req.URL.Path, "/chunked"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Conn: %d\r\n\r\n3\r\nabc\r\n0\r\n\r\n", id)
		case strings.HasSuffix(req.URL.Path, "/close"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nX-Conn: %d\r\n\r\nok", id)
			return
		case strings.HasSuffix(req.URL.Path, "/204"):
			fmt.Fprintf(c, "HTTP/1.1 204 No Content\r\nX-Conn: %d\r\n\r\n", id)
		default:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Conn: %d\r\n\r\nabc", id)
		}
		if req, err = http.ReadRequest(br); err != nil {
			return
		}
	}
	if strings.HasSuffix(req.URL.Path, "/early") { // answers before the whole body came
		part := make([]byte, 5)
		io.ReadFull(req.Body, part)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\ngot %s\n", part)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var lines []string
	for k, vs := range req.Header {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	if req.Host != "" {
		lines = append(lines, "Host: "+req.Host)
	}
	if req.ContentLength >= 0 && len(req.TransferEncoding) == 0 && (req.ContentLength > 0 || req.Header.Get("Content-Length") != "") {
		lines = append(lines, "Content-Length: "+strconv.FormatInt(req.ContentLength, 10))
	}
	for _, te := range req.TransferEncoding {
		lines = append(lines, "Transfer-Encoding: "+te)
	}
	sort.Strings(lines)
	echo := req.Method + " " + req.RequestURI + " " + req.Proto + "\n" + strings.Join(lines, "\n") + "\n\n" + string(body)
	path := req.URL.Path
	switch {
	case strings.HasSuffix(path, "/upgrade"):
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Got: %s|%s\r\n\r\n",
			req.Header.Get("Upgrade"), req.Header.Get("Connection"))
		io.Copy(c, br) // echo until the proxy closes
	case strings.HasSuffix(path, "/peer"): // the address the proxy connected from
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(host), host)
	case strings.HasSuffix(path, "/garbage"):
		io.WriteString(c, "this is not http\r\n\r\n")
	case strings.HasSuffix(path, "/big"):
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("b", 8000)+"\r\n\r\nbody")
	case strings.HasSuffix(path, "/nothing"):
	case strings.HasSuffix(path, "/halfhead"):
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-A: 1\r\n")
	case strings.HasSuffix(path, "/slow"):
		time.Sleep(2500 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	case strings.HasSuffix(path, "/status"):
		fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Length: 5\r\nX-Custom: from-backend\r\n\r\nbody\n", req.URL.Query().Get("s"))
	case strings.HasSuffix(path, "/chunked"):
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/x-test\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	case strings.HasSuffix(path, "/noframing"):
		io.WriteString(c, "HTTP/1.0 200 OK\r\nX-Custom: old\r\n\r\nuntil the close")
	case strings.HasSuffix(path, "/stream"):
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: first\n\n")
		select {
		case <-b.release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(c, "data: last\n\n")
	default:
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nX-Custom: from-backend\r\nServer: backend\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n\r\n%s",
			len(echo), echo)
	}
}

const proxyTestConf = `
log_format bytes "$uri $upstream_status $upstream_bytes_sent $upstream_bytes_received $upstream_response_length";
upstream nu { server 127.0.0.1:REFUSED; server BACKEND; }
map $request_body_file $has_file { "" no; default yes; }
upstream twice { server BACKEND; server BACKEND; }
upstream ka { server BACKEND; keepalive 2; }
upstream kar { server BACKEND; keepalive 1; keepalive_requests 2; }
server {
    listen 127.0.0.1:{{PORT}};
    proxy_read_timeout 1s;
    location / {
        add_header X-Status "$upstream_status";
        add_header X-UH "$upstream_http_x_custom";
        add_header X-Sent "$upstream_bytes_sent";
        proxy_pass http://BACKEND;
    }
    location /v11/ { proxy_http_version 1.1; proxy_pass http://BACKEND; }
    location /nobuf/ { proxy_buffering off; proxy_pass http://BACKEND; }
    location /xff/ {
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-PH "$proxy_host|$proxy_port";
        proxy_pass http://BACKEND;
    }
    location /small/ { proxy_buffer_size 1k; proxy_pass http://BACKEND; }
    location /up/ {
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_pass http://BACKEND;
    }
    location /nu/ {
        add_header X-Addr "$upstream_addr" always;
        add_header X-US "$upstream_status" always;
        proxy_next_upstream error timeout http_404;
        proxy_pass http://nu;
    }
    location /twice/ {
        add_header X-Addr "$upstream_addr" always;
        add_header X-US "$upstream_status" always;
        proxy_next_upstream error timeout invalid_header http_503;
        proxy_pass http://twice;
    }
    location /once/ {
        add_header X-US "$upstream_status" always;
        proxy_next_upstream_tries 1;
        proxy_pass http://twice;
    }
    location /unbuf/ {
        proxy_request_buffering off;
        proxy_http_version 1.1;
        add_header X-Body "$request_body";
        proxy_pass http://BACKEND;
    }
    location /unbuf10/ { proxy_request_buffering off; proxy_pass http://BACKEND; }
    location /ka/ {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://ka;
    }
    location /kar/ {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://kar/ka/;
    }
    location /kaclose/ { proxy_http_version 1.1; proxy_pass http://ka/ka/; }
    location /bytes/ {
        access_log {{DIR}}/bytes.log bytes;
        proxy_pass http://BACKEND;
    }
    location /bind/ {
        proxy_bind 127.0.0.2;
        proxy_pass http://BACKEND;
        location /bind/in/ { proxy_pass http://BACKEND; }
        location /bind/off/ { proxy_bind off; proxy_pass http://BACKEND; }
    }
    location /bindvar/ { proxy_bind $arg_b; proxy_pass http://BACKEND; }
    location /bindfail/ { proxy_bind 192.0.2.1; proxy_pass http://BACKEND; }
    location /bodyfile/ {
        client_body_buffer_size 16;
        add_header X-Body "$request_body";
        add_header X-File "$has_file";
        proxy_pass http://BACKEND;
        location /bodyfile/only/ {
            client_body_in_file_only clean;
            add_header X-Body "$request_body";
            add_header X-File "$has_file";
            proxy_pass http://BACKEND;
        }
    }
    location /force/ { proxy_force_ranges on; proxy_pass http://BACKEND; }
    location /passhdr/ { proxy_pass_header Server; proxy_pass_header Date; proxy_pass http://BACKEND; }
    location /moreset/ {
        more_set_input_headers "x-new: n1" "X-B: B" "zz-last: z" "COOKIE: k";
        more_clear_input_headers accept;
        more_set_input_headers -r "X-A: a2" "x-absent: no";
        proxy_pass http://BACKEND;
    }
    location /luaset/ {
        rewrite_by_lua_block {
            ngx.req.set_header("X-New", "n1")
            ngx.req.set_header("x-b", "B")
            ngx.req.set_header("X-Multi", {"m1", "m2"})
            ngx.req.set_header("Accept", {"a1", "a2"})
            ngx.req.clear_header("x-a")
            ngx.req.set_header("X-A", "again")
            ngx.req.set_header("my_under", "u")
            ngx.req.set_header("x-new", "n2")
            ngx.req.set_header("X-Gone", "g")
            ngx.req.set_header("X-Gone", nil)
            ngx.req.set_header("x-multi", {"m3", "m4", "m5"})
        }
        proxy_pass http://BACKEND;
    }
    location /luaclear/ {
        rewrite_by_lua_block {
            ngx.req.clear_header("X-Custom")
            ngx.req.set_header("X-Custom", "back")
            ngx.req.set_header("COOKIE", {})
            ngx.req.set_header("Zz", "z")
            ngx.req.set_header("Aa", "a")
            ngx.req.set_header("M", "")
        }
        proxy_pass http://BACKEND;
    }
    location /capset/ {
        rewrite_by_lua_block {
            ngx.req.set_header("Zz", "1")
            ngx.req.set_header("x-b", {"B1", "B2"})
        }
        content_by_lua_block { ngx.print(ngx.location.capture("/capsub/rawecho").body) }
    }
    location /capsub/ {
        rewrite_by_lua_block { ngx.req.set_header("Aa", "2") }
        proxy_pass http://BACKEND;
    }
}
`

// proxyConf is proxyTestConf for backend be (REFUSED: a port nothing
// listens on).
func proxyConf(t *testing.T, be *proxyBackend) string {
	return strings.NewReplacer("BACKEND", be.addr(), "REFUSED", strconv.Itoa(freePort(t))).Replace(proxyTestConf)
}

// headRecorder keeps what a backend connection read (its first request's
// head is a prefix of it).
type headRecorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (h *headRecorder) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if h.buf.Len() < 64<<10 {
		h.buf.Write(p[:n])
	}
	return n, err
}

// TestProxyDifferential compares the answers and what the backend received.
func TestProxyDifferential(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	be := startProxyBackend(t)
	conf := proxyConf(t, be)
	servers := []*Server{startServer(t, "nginx", ServerOptions{HTTP: conf}), startServer(t, "ngxsockify", ServerOptions{HTTP: conf})}
	type result struct {
		Status  int
		Headers map[string][]string
		Body    string
		Err     bool
	}
	compared := []string{"X-Sent", "X-Body", "X-Addr", "X-US", "Content-Type", "Content-Length", "X-Custom", "X-Status", "X-UH", "Keep-Alive", "Transfer-Encoding", "Date", "Server", "Content-Range", "Accept-Ranges", "X-File"}
	requests := []string{
		"GET /echo?a=1 HTTP/1.1\r\nHost: front.test\r\nX-Custom: c1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nTE: trailers\r\nKeep-Alive: 300\r\nProxy-Connection: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		"GET /echo HTTP/1.0\r\n\r\n",
		// the client's header lines reach the backend in their order and
		// spelling, a repeated name at each of its lines
		"GET /rawecho HTTP/1.1\r\nHost: a\r\nx-b: 1\r\nX-A: 2\r\nx-b: 3\r\naccept: */*\r\nCOOKIE: c=1\r\nX-Custom: c1\r\nConnection: keep-alive\r\n\r\n",
		// headers Lua set or cleared: a value replaces a name's first line
		// in place (its other lines go), a new name or a table's further
		// values go at the end, in the order set (nginx's header list)
		"GET /luaset/rawecho HTTP/1.1\r\nHost: a\r\nx-b: 1\r\nX-A: 2\r\nx-b: 3\r\naccept: */*\r\nCOOKIE: c=1\r\nX-Custom: c1\r\nConnection: keep-alive\r\n\r\n",
		// headers-more's input commands change the list as Lua's set_header
		"GET /moreset/rawecho HTTP/1.1\r\nHost: a\r\nx-b: 1\r\nX-A: 2\r\nx-b: 3\r\naccept: */*\r\nCOOKIE: c=1\r\nX-Custom: c1\r\nConnection: keep-alive\r\n\r\n",
		"GET /luaclear/rawecho HTTP/1.1\r\nHost: a\r\nx-b: 1\r\nX-Custom: c1\r\nCOOKIE: c=1\r\nCookie: d=2\r\nX-Custom: c2\r\nM: 1\r\n\r\n",
		// a subrequest starts with its parent's header list
		"GET /capset/x HTTP/1.1\r\nHost: a\r\nx-b: 1\r\nM: 1\r\nConnection: close\r\n\r\n",
		"HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /v11/echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /xff/echo HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
		"GET /passhdr/echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /passhdr/status?s=200+OK HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /garbage HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /small/echo HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("l", 1200) + "\r\n\r\n",
		"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /halfhead HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /status?s=404+Nope HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /status?s=503+Busy HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /status?s=299+Odd HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /noframing HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /unbuf/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
		// (a chunked body with proxy_request_buffering off: nginx sends a
		// Content-Length when the whole body came with the header, and so
		// does ngxsockify: TestProxyWholeChunkedBody)
		"POST /unbuf10/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /unbuf/early HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234",
		"GET /bytes/chunked HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /bytes/status?s=201+Made HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET /nu/echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /nu/status?s=404+No HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /twice/slow HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /twice/big HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /twice/nothing HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
		"GET /twice/nothing HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /twice/status?s=503+Busy HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /once/nothing HTTP/1.1\r\nHost: a\r\n\r\n",
		// proxy_bind: inherited, off, with variables (empty: no bind; no
		// address: an error, no bind), a bind() that fails (500)
		"GET /bind/peer HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /bind/in/peer HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /bind/off/peer HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /bindvar/peer?b=127.0.0.3 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /bindvar/peer?b= HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /bindvar/peer?b=local HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /bindfail/peer HTTP/1.1\r\nHost: a\r\n\r\n",
		// proxy_force_ranges: one range of a body of known length (the
		// backend's Accept-Ranges dropped, nginx's own on a whole body)
		"GET /force/echo HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2\r\n\r\n",
		"GET /force/echo HTTP/1.1\r\nHost: a\r\nRange: bytes=-5\r\n\r\n",
		"GET /force/echo HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2,4-5\r\n\r\n",
		"GET /force/echo HTTP/1.1\r\nHost: a\r\nRange: bytes=99999-\r\n\r\n",
		"GET /force/echo HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2\r\nIf-Range: \"x\"\r\n\r\n",
		"GET /force/echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /force/chunked HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2\r\n\r\n",
		"GET /force/status?s=404+No HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2\r\n\r\n",
		// a body past client_body_buffer_size (or any, under
		// client_body_in_file_only) is $request_body_file, not $request_body
		"POST /bodyfile/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789",
		"POST /bodyfile/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n01234567890123456789",
		"POST /bodyfile/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n0\r\n\r\n",
		"POST /bodyfile/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("b", 2000),
		"POST /bodyfile/only/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET /bodyfile/only/echo HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	for _, raw := range requests {
		var got [2]result
		for i, s := range servers {
			resp, err := rawRequest(s.Addr, raw+"", routingTimeout)
			if err != nil {
				got[i] = result{Err: true}
				continue
			}
			r := result{Status: resp.Status, Body: resp.Body, Headers: map[string][]string{}}
			for _, h := range compared {
				if v := resp.Header.Values(h); len(v) > 0 {
					switch h {
					case "Date", "Server":
						v = []string{strconv.FormatBool(strings.Contains(v[0], "2001") || v[0] == "backend")}
					}
					r.Headers[h] = v
				}
			}
			r.Body = portPlaceholder(r.Body, s.Port)
			for _, h := range []string{"X-Addr", "X-Connect"} {
				for j, v := range r.Headers[h] {
					r.Headers[h][j] = strings.NewReplacer(be.addr(), "BACKEND").Replace(v)
				}
			}
			got[i] = r
		}
		first, _, _ := strings.Cut(raw, "\r\n")
		if diff := cmp.Diff(got[0], got[1]); diff != "" {
			t.Errorf("%s: nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", first, diff)
		}
	}
	// the byte counts at log time
	var logs [2]string
	for i, s := range servers {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "bytes.log"))
		logs[i] = string(b)
	}
	if logs[0] != logs[1] || logs[0] == "" {
		t.Errorf("byte counts differ:\nnginx:\n%s\nngxsockify:\n%s", logs[0], logs[1])
	}
	// the error-log words nginx wrote for the failures
	for _, words := range []string{
		"upstream sent no valid HTTP/1.0 header while reading response header from upstream",
		"upstream sent too big header while reading response header from upstream",
		"upstream prematurely closed connection while reading response header from upstream",
		"upstream timed out (110: Connection timed out) while reading response header from upstream",
		`invalid local address "local"`,
		"bind(192.0.2.1) failed (99: Cannot assign requested address) while connecting to upstream",
	} {
		for _, s := range servers {
			if !strings.Contains(s.ErrorLog(), words) {
				t.Errorf("%s's error log lacks %q", s.Kind, words)
			}
		}
	}
}

// TestProxyBufferingOff checks that proxy_buffering off passes what the
// backend sent before it sends the rest (server-sent events).
func TestProxyBufferingOff(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			be := startProxyBackend(t)
			s := startServer(t, kind, ServerOptions{HTTP: proxyConf(t, be)})
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(4 * time.Second))
			io.WriteString(c, "GET /nobuf/stream HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(c)
			var seen strings.Builder
			for !strings.Contains(seen.String(), "data: first") {
				l, err := br.ReadString('\n')
				seen.WriteString(l)
				if err != nil {
					t.Fatalf("before the backend finished: %v; read %q", err, seen.String())
				}
			}
			close(be.release)
		})
	}
}

// TestProxyUpgrade relays an upgraded connection through proxy_pass on
// both servers: the 101 and its headers, bytes both ways (the client's
// first bytes sent with the request), and the close after
// proxy_read_timeout (1s) without traffic.
func TestProxyUpgrade(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	be := startProxyBackend(t)
	conf := proxyConf(t, be)
	var heads [2]string
	for i, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(6 * time.Second))
		io.WriteString(c, "GET /up/upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly ")
		br := bufio.NewReader(c)
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the 101: %v", kind, err)
			}
			l = strings.TrimRight(l, "\r\n")
			if l == "" {
				break
			}
			if !strings.HasPrefix(l, "Date:") && !strings.HasPrefix(l, "Server:") {
				lines = append(lines, l)
			}
		}
		heads[i] = strings.Join(lines, "\n")
		io.WriteString(c, "late")
		want := "early late"
		got := make([]byte, len(want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
			t.Errorf("%s: echoed %q, %v; want %q", kind, got, err, want)
		}
		start := time.Now()
		if _, err := br.ReadByte(); err == nil {
			t.Errorf("%s: a byte after the echo", kind)
		} else if d := time.Since(start); d < 700*time.Millisecond || d > 4*time.Second {
			t.Errorf("%s: closed after %v of silence (%v), want proxy_read_timeout 1s", kind, d, err)
		}
	}
	if heads[0] != heads[1] {
		t.Errorf("101 heads differ:\nnginx:\n%s\nngxsockify:\n%s", heads[0], heads[1])
	}
}

// TestProxyKeepalive checks the connection reuse of `keepalive N` on both
// servers: which requests went over the connection of the one before
// (lengths, chunked, 204, HEAD, a backend that closes, a request sent with
// Connection: close).
func TestProxyKeepalive(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	paths := []string{"GET /ka/a", "GET /ka/b", "GET /ka/chunked", "GET /ka/c", "GET /ka/204", "HEAD /ka/d",
		"GET /ka/e", "GET /ka/close", "GET /ka/f", "GET /ka/g", "GET /kaclose/h", "GET /ka/i",
		"GET /kar/1", "GET /kar/2", "GET /kar/3", "GET /kar/4", "GET /kar/5"}
	var got [2][]string
	for i, kind := range []string{"nginx", "ngxsockify"} {
		be := startProxyBackend(t)
		s := startServer(t, kind, ServerOptions{HTTP: proxyConf(t, be)})
		prev := ""
		for _, p := range paths {
			resp, err := rawRequest(s.Addr, p+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", routingTimeout)
			if err != nil {
				got[i] = append(got[i], p+": "+err.Error())
				continue
			}
			conn := resp.Header.Get("X-Conn")
			got[i] = append(got[i], fmt.Sprintf("%s: %d same=%v body=%q", p, resp.Status, conn == prev, resp.Body))
			prev = conn
		}
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", diff)
	}
}

// TestProxyHTTPS proxies to TLS backends (server blocks of the same
// config) on both servers: no SNI and no verification by default,
// proxy_ssl_server_name and proxy_ssl_name, proxy_ssl_verify against a
// trusted root (DNS names, wildcards, the CN of a certificate without
// them, a mismatch, an untrusted chain), and a client certificate.
func TestProxyHTTPS(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	pki := newTestPKI(t)
	now := time.Now()
	pki.issue(t, "web", &x509.Certificate{Subject: pkix.Name{CommonName: "ignored.test"},
		DNSNames: []string{"www.example.test", "*.wild.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(50 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, "root", false)
	conf := strings.ReplaceAll(`
server {
    listen 127.0.0.1:{{PORT2}} ssl;
    ssl_certificate PKI/web.crt;
    ssl_certificate_key PKI/web.key;
    ssl_verify_client optional_no_ca;
    location / { return 200 "web sni=$ssl_server_name client=$ssl_client_s_dn uri=$uri\n"; }
}
server {
    listen 127.0.0.1:{{PORT3}} ssl;
    ssl_certificate PKI/alice.crt;
    ssl_certificate_key PKI/alice.key;
    location / { return 200 "alice sni=$ssl_server_name\n"; }
}
server {
    listen 127.0.0.1:{{PORT}};
    proxy_ssl_trusted_certificate PKI/root.crt;
    # nginx shares a backend's TLS sessions between locations (a resumed
    # session keeps the first one's verify result): off, so that each
    # location's own settings decide
    proxy_ssl_session_reuse off;
    location /plain/ { proxy_pass https://127.0.0.1:{{PORT2}}/; }
    location /sni/ {
        proxy_ssl_server_name on;
        proxy_ssl_name www.example.test;
        proxy_pass https://127.0.0.1:{{PORT2}}/;
    }
    location /verify/ { proxy_ssl_verify on; proxy_ssl_name www.example.test; proxy_pass https://127.0.0.1:{{PORT2}}/; }
    location /wild/ { proxy_ssl_verify on; proxy_ssl_name a.wild.test; proxy_pass https://127.0.0.1:{{PORT2}}/; }
    location /mismatch/ { proxy_ssl_verify on; proxy_ssl_name other.test; proxy_pass https://127.0.0.1:{{PORT2}}/; }
    location /cn/ { proxy_ssl_verify on; proxy_ssl_name alice; proxy_pass https://127.0.0.1:{{PORT3}}/; }
    location /untrusted/ {
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate PKI/eve.crt;
        proxy_ssl_name alice;
        proxy_pass https://127.0.0.1:{{PORT3}}/;
    }
    location /client/ {
        proxy_ssl_certificate PKI/mallory.crt;
        proxy_ssl_certificate_key PKI/mallory.key;
        proxy_pass https://127.0.0.1:{{PORT2}}/;
    }
    # paths with variables: read for each request; none when empty
    location /varclient/ {
        proxy_ssl_certificate PKI/$arg_c.crt;
        proxy_ssl_certificate_key PKI/$arg_c.key;
        proxy_pass https://127.0.0.1:{{PORT2}}/;
    }
    location /varnone/ {
        proxy_ssl_certificate $arg_c;
        proxy_ssl_certificate_key $arg_c;
        proxy_pass https://127.0.0.1:{{PORT2}}/;
    }
}
`, "PKI/", pki.dir+"/")
	sameAnswers(t, conf, []string{"/plain/x", "/sni/y", "/verify/", "/wild/", "/mismatch/", "/cn/", "/untrusted/", "/client/",
		"/varclient/?c=mallory", "/varclient/?c=alice", "/varclient/?c=missing", "/varnone/"},
		`upstream SSL certificate does not match "other.test" while SSL handshaking to upstream`,
		"upstream SSL certificate verify error: (21:unable to verify the first certificate) while SSL handshaking to upstream")
}

// sameAnswers runs conf on nginx and ngxsockify, GETs paths from both
// (status, and body when 200) and checks that both error logs hold each
// of logs.
func sameAnswers(t *testing.T, conf string, paths []string, logs ...string) {
	t.Helper()
	servers := []*Server{startServer(t, "nginx", ServerOptions{HTTP: conf}), startServer(t, "ngxsockify", ServerOptions{HTTP: conf})}
	var got [2][]string
	for i, s := range servers {
		for _, p := range paths {
			resp, err := rawRequest(s.Addr, "GET "+p+" HTTP/1.0\r\n\r\n", routingTimeout)
			if err != nil {
				got[i] = append(got[i], p+": "+err.Error())
				continue
			}
			body := resp.Body
			if resp.Status != 200 {
				body = ""
			}
			got[i] = append(got[i], fmt.Sprintf("%s: %d %s", p, resp.Status, body))
		}
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("nginx and ngxsockify differ (-nginx +ngxsockify):\n%s", diff)
	}
	for _, words := range logs {
		for _, s := range servers {
			if !strings.Contains(s.ErrorLog(), words) {
				t.Errorf("%s's error log lacks %q:\n%s", s.Kind, words, s.ErrorLog())
			}
		}
	}
}

// TestProxySSLCRLAndDepth: proxy_ssl_verify with proxy_ssl_crl (every
// certificate of the backend's chain checked against its issuer's CRL:
// a revoked one, and an intermediate with no CRL, fail) and
// proxy_ssl_verify_depth (default 1), against nginx; a trusted file
// without a self-signed root verifies nothing, as with OpenSSL.
func TestProxySSLCRLAndDepth(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	pki := newTestPKI(t)
	pki.concat(t, "bobchain.crt", "bob.crt", "int.crt")
	conf := strings.ReplaceAll(`
server {
    listen 127.0.0.1:{{PORT2}} ssl;
    ssl_certificate PKI/mallory.crt;
    ssl_certificate_key PKI/mallory.key;
    return 200 "mallory\n";
}
server {
    listen 127.0.0.1:{{PORT3}} ssl;
    ssl_certificate PKI/alice.crt;
    ssl_certificate_key PKI/alice.key;
    return 200 "alice\n";
}
server {
    listen 127.0.0.1:{{PORT4}} ssl;
    ssl_certificate PKI/bobchain.crt;
    ssl_certificate_key PKI/bob.key;
    return 200 "bob\n";
}
server {
    listen 127.0.0.1:{{PORT}};
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate PKI/root.crt;
    proxy_ssl_session_reuse off;
    location /revoked/ { proxy_ssl_crl PKI/root.crl; proxy_ssl_name mallory; proxy_pass https://127.0.0.1:{{PORT2}}/; }
    location /nocrl/ { proxy_ssl_name mallory; proxy_pass https://127.0.0.1:{{PORT2}}/; }
    location /good/ { proxy_ssl_crl PKI/root.crl; proxy_ssl_name alice; proxy_pass https://127.0.0.1:{{PORT3}}/; }
    location /intnocrl/ { proxy_ssl_crl PKI/root.crl; proxy_ssl_name bob; proxy_pass https://127.0.0.1:{{PORT4}}/; }
    location /depth1/ { proxy_ssl_name bob; proxy_pass https://127.0.0.1:{{PORT4}}/; }
    location /depth0/ { proxy_ssl_verify_depth 0; proxy_ssl_name bob; proxy_pass https://127.0.0.1:{{PORT4}}/; }
    location /intonly/ { proxy_ssl_trusted_certificate PKI/int.crt; proxy_ssl_name bob; proxy_pass https://127.0.0.1:{{PORT4}}/; }
}
`, "PKI/", pki.dir+"/")
	sameAnswers(t, conf, []string{"/revoked/", "/nocrl/", "/good/", "/intnocrl/", "/depth1/", "/depth0/", "/intonly/"},
		"upstream SSL certificate verify error: (23:certificate revoked) while SSL handshaking to upstream",
		"upstream SSL certificate verify error: (3:unable to get certificate CRL) while SSL handshaking to upstream",
		"upstream SSL certificate verify error: (2:unable to get issuer certificate) while SSL handshaking to upstream")
}
