package test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Raw is a raw HTTP/2 client connection for the tests below, which
// compare what nginx and ngxsockify answer to frames an ordinary client
// would not send (nginx-tests' h2.t, h2_host.t).
type h2Raw struct {
	c   net.Conn
	fr  *http2.Framer
	dec *hpack.Decoder
}

// dialH2 opens a connection with the preface; settings: a SETTINGS frame
// follows it (nil: none at all, the first frame is the client's next).
func dialH2(t *testing.T, addr string, settings []http2.Setting) *h2Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, routingTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(routingTimeout))
	io.WriteString(c, http2.ClientPreface)
	h := &h2Raw{c: c, fr: http2.NewFramer(c, c), dec: hpack.NewDecoder(4096, nil)}
	if settings != nil {
		h.fr.WriteSettings(settings...)
	}
	return h
}

// get opens stream sid: GET path with :authority host (none if empty),
// then the fields of extra (name, value, ...).
func (h *h2Raw) get(sid uint32, path, host string, extra ...string) {
	var hb strings.Builder
	enc := hpack.NewEncoder(&hb)
	fields := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}}
	if host != "" {
		fields = append(fields, [2]string{":authority", host})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		fields = append(fields, [2]string{extra[i], extra[i+1]})
	}
	for _, f := range fields {
		if strings.HasPrefix(f[0], "raw:") {
			// a literal without indexing, name and value not Huffman-coded
			hb.WriteByte(0)
			hb.WriteString(hpackRaw(f[0][4:]) + hpackRaw(f[1]))
			continue
		}
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: []byte(hb.String()), EndStream: true, EndHeaders: true})
}

// until reads frames until stop says so or wait passes, and describes
// them: "HEADERS:1:200", "DATA:1" (once per stream), "RST_STREAM:1",
// "GOAWAY:code", "PING", "EOF"; SETTINGS are acknowledged, not listed.
func (h *h2Raw) until(wait time.Duration, stop func(desc string) bool) string {
	h.c.SetReadDeadline(time.Now().Add(wait))
	var out []string
	data := map[uint32]bool{}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				out = append(out, "TIMEOUT")
			} else {
				out = append(out, "EOF")
			}
			return strings.Join(out, " ")
		}
		desc := ""
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			status := ""
			fields, _ := h.dec.DecodeFull(f.HeaderBlockFragment())
			for _, hf := range fields {
				if hf.Name == ":status" {
					status = hf.Value
				}
			}
			desc = fmt.Sprintf("HEADERS:%d:%s", f.StreamID, status)
		case *http2.DataFrame:
			if !data[f.StreamID] {
				data[f.StreamID] = true
				desc = fmt.Sprintf("DATA:%d", f.StreamID)
			}
		case *http2.RSTStreamFrame:
			desc = fmt.Sprintf("RST_STREAM:%d", f.StreamID)
		case *http2.GoAwayFrame:
			desc = fmt.Sprintf("GOAWAY:%d", f.ErrCode)
		case *http2.PingFrame:
			desc = "PING"
		}
		if desc != "" {
			out = append(out, desc)
			if stop(desc) {
				return strings.Join(out, " ")
			}
		}
	}
}

// hpackRaw is s as an HPACK string literal that is not Huffman-coded.
func hpackRaw(s string) string {
	var b []byte
	if n := len(s); n < 127 {
		b = append(b, byte(n))
	} else {
		b = append(b, 127)
		for n -= 127; n >= 128; n >>= 7 {
			b = append(b, byte(n&0x7f|0x80))
		}
		b = append(b, byte(n>>0))
	}
	return string(b) + s
}

func is(s string) func(string) bool { return func(d string) bool { return d == s } }

const h2FramesConf = `
server {
    listen 127.0.0.1:{{PORT}} http2;
    root {{DIR}}/www;
    send_timeout 1s;
    location / { }
    location /r { return 200 "SEE-THIS"; }
}`

func h2FramesServers(t *testing.T) (a, b *Server) {
	files := map[string]string{"www/big.html": strings.Repeat("0123456789abcdef", 1<<14)}
	a = startServer(t, "nginx", ServerOptions{HTTP: h2FramesConf, Files: files})
	b = startServer(t, "ngxsockify", ServerOptions{HTTP: h2FramesConf, Files: files})
	return a, b
}

// TestHTTP2FirstFrameNotSettings: nginx serves a connection whose preface
// another frame than SETTINGS follows (nginx-tests h2.t, "pure"
// connections); x/net/http2 alone ends it with GOAWAY PROTOCOL_ERROR.
func TestHTTP2FirstFrameNotSettings(t *testing.T) {
	a, b := h2FramesServers(t)
	run := func(addr string) string {
		h := dialH2(t, addr, nil)
		h.fr.WriteWindowUpdate(0, 1<<16)
		h.get(1, "/r", "localhost")
		return h.until(3*time.Second, is("DATA:1"))
	}
	want, got := run(a.Addr), run(b.Addr)
	if got != want {
		t.Errorf("got %q, nginx %q", got, want)
	}
}

// TestHTTP2InvalidAuthority: :authority is checked as nginx checks a Host
// header: "." and a double dot answer 400 (nginx-tests h2_host.t); nginx
// 1.22 makes :authority a Host header, so that a host field besides it is
// a duplicate (400) even with the same value (h2_headers.t). (Two host
// fields, or host and :authority that differ, x/net/http2 resets.)
func TestHTTP2InvalidAuthority(t *testing.T) {
	a, b := h2FramesServers(t)
	for _, hosts := range [][2]string{{".", ""}, {"..examp-LE.com", ""}, {"com.exa-m.45..:", ""},
		{"[abcd::ef98:0:7654:321]..:98", ""}, {"localhost", ""}, {"", ".."}, {"", "localhost"},
		{"localhost", "localhost"}} {
		run := func(addr string) string {
			h := dialH2(t, addr, []http2.Setting{})
			var extra []string
			for _, v := range strings.Split(hosts[1], "|") {
				if v != "" {
					extra = append(extra, "host", v)
				}
			}
			h.get(1, "/r", hosts[0], extra...)
			return h.until(3*time.Second, func(d string) bool { return strings.HasPrefix(d, "HEADERS:1") })
		}
		want, got := run(a.Addr), run(b.Addr)
		if got != want {
			t.Errorf("%q: got %q, nginx %q", hosts, got, want)
		}
	}
}

// TestHTTP2SendTimeoutStalled: a stream whose client opens no window for
// its response is given up after send_timeout, as nginx does (RST_STREAM;
// before, the handler waited for ever and a graceful stop with it).
func TestHTTP2SendTimeoutStalled(t *testing.T) {
	a, b := h2FramesServers(t)
	run := func(addr string) string {
		h := dialH2(t, addr, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}})
		h.get(1, "/big.html", "localhost")
		return h.until(5*time.Second, is("RST_STREAM:1"))
	}
	want, got := run(a.Addr), run(b.Addr)
	if got != want {
		t.Errorf("got %q, nginx %q", got, want)
	}
}

// TestHTTP2ResetQueuedData: a client that resets a stream whose DATA is
// queued, then sends PING and opens another stream, gets both answered.
// x/net/http2's priority scheduler, keeping closed streams in its tree,
// panicked there and took the process down.
func TestHTTP2ResetQueuedData(t *testing.T) {
	a, b := h2FramesServers(t)
	run := func(addr string) string {
		var out []string
		for i := range 5 {
			h := dialH2(t, addr, []http2.Setting{})
			h.get(1, "/big.html", "localhost")
			h.get(3, "/big.html", "localhost")
			h.until(3*time.Second, is("HEADERS:3:200"))
			h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
			h.fr.WriteRSTStream(3, http2.ErrCodeCancel)
			h.fr.WritePing(false, [8]byte{byte(i)})
			r := h.until(3*time.Second, is("PING"))
			r = r[strings.LastIndex(r, " ")+1:] // what the resets left queued may come first
			h.fr.WriteWindowUpdate(0, 1<<20)
			h.get(5, "/r", "localhost")
			r += " | " + h.until(3*time.Second, is("DATA:5"))
			out = append(out, r)
		}
		return strings.Join(out, "\n")
	}
	want, got := run(a.Addr), run(b.Addr)
	if got != want {
		t.Errorf("got\n%s\nnginx\n%s", got, want)
	}
}

// TestHTTP2MaxHeaders: max_headers (nginx 1.27.2, backported in Debian's
// 1.22.1) counts an HTTP/2 request's regular
// fields, :authority apart, and answers 400 past it (nginx-tests
// h2_max_headers.t).
func TestHTTP2MaxHeaders(t *testing.T) {
	conf := `
server {
    listen 127.0.0.1:{{PORT}} http2;
    max_headers 5;
    location / { return 200 "SEE-THIS"; }
}`
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	for n, want := range map[int]string{5: "HEADERS:1:200", 6: "HEADERS:1:400"} {
		h := dialH2(t, b.Addr, []http2.Setting{})
		var extra []string
		for i := range n {
			extra = append(extra, "x-blah", fmt.Sprint(i))
		}
		h.get(1, "/", "localhost", extra...)
		got := h.until(3*time.Second, func(d string) bool { return strings.HasPrefix(d, "HEADERS:1") })
		if got != want {
			t.Errorf("%d fields: got %q, want %q", n, got, want)
		}
	}
}

// TestHTTP2MaxHeadersVirtualServer: Debian's nginx 1.22.1 carries
// max_headers; on HTTP/2 the fields count against the limit of the server
// :authority selects (the address's default server's when it names none).
func TestHTTP2MaxHeadersVirtualServer(t *testing.T) {
	conf := `
server {
    listen 127.0.0.1:{{PORT}} http2;
    server_name def;
    max_headers 3;
    location / { return 200 "def"; }
}
server {
    listen 127.0.0.1:{{PORT}} http2;
    server_name big;
    max_headers 10;
    location / { return 200 "big"; }
}
server {
    listen 127.0.0.1:{{PORT}} http2;
    server_name small;
    max_headers 1;
    location / { return 200 "small"; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: conf})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	for _, c := range []struct {
		host string
		n    int
	}{{"def", 3}, {"def", 4}, {"big", 10}, {"big", 11}, {"small", 1}, {"small", 2}, {"nosuch", 3}, {"nosuch", 4}} {
		run := func(s *Server) string {
			h := dialH2(t, s.Addr, []http2.Setting{})
			var extra []string
			for i := range c.n {
				extra = append(extra, "x-blah", fmt.Sprint(i))
			}
			h.get(1, "/", c.host, extra...)
			return h.until(3*time.Second, func(d string) bool { return strings.HasPrefix(d, "HEADERS:1") })
		}
		if got, want := run(b), run(a); got != want {
			t.Errorf("%s, %d fields: got %q, nginx %q", c.host, c.n, got, want)
		}
	}
}

// TestHTTP2HeaderFieldLimits: large_client_header_buffers bounds an HTTP/2
// request's fields as nginx's does: a name or a value longer than a buffer,
// or names and values (pseudo-header fields too) past all the buffers, end
// the connection without an answer (nginx-tests h2_headers.t).
func TestHTTP2HeaderFieldLimits(t *testing.T) {
	conf := `
server {
    listen 127.0.0.1:{{PORT}} http2;
    large_client_header_buffers 4 512;
    location / { return 200 "SEE-THIS"; }
}
server {
    listen 127.0.0.1:{{PORT2}} http2;
    large_client_header_buffers 1 512;
    location / { return 200 "SEE-THIS"; }
}`
	a := startServer(t, "nginx", ServerOptions{HTTP: conf})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	for _, c := range []struct {
		second      bool
		name, value string
	}{
		// nginx holds the strings as coded against a buffer
		{false, strings.Repeat("x", 512), "value"},
		{false, strings.Repeat("x", 513), "value"}, // Huffman-coded: shorter
		{false, "raw:" + strings.Repeat("x", 512), "value"},
		{false, "raw:" + strings.Repeat("x", 513), "value"},
		{false, "raw:longname", strings.Repeat("x", 512)},
		{false, "raw:longname", strings.Repeat("x", 513)},
		{false, "longname", strings.Repeat("x", 700)},
		{false, "longname", strings.Repeat("~", 513)},
		// the decoded list, against all the buffers: :method GET, :scheme
		// http, :path /t2.html, :authority localhost are 53 bytes
		{true, "longname", strings.Repeat("x", 451)},
		{true, "longname", strings.Repeat("x", 452)},
	} {
		run := func(s *Server) string {
			addr := s.Addr
			if c.second {
				addr = fmt.Sprintf("127.0.0.1:%d", s.Ports[1])
			}
			h := dialH2(t, addr, []http2.Setting{})
			h.get(1, "/t2.html", "localhost", c.name, c.value)
			out := h.until(3*time.Second, is("DATA:1"))
			if strings.HasPrefix(out, "GOAWAY") || out == "EOF" {
				out = "closed" // nginx says GOAWAY (ENHANCE_YOUR_CALM), ngxsockify closes
			}
			return strings.TrimSuffix(out, " EOF")
		}
		want, got := run(a), run(b)
		if got != want {
			t.Errorf("%d-byte name, %d-byte value (port 2: %v): got %q, nginx %q", len(c.name), len(c.value), c.second, got, want)
		}
	}
}

// TestHTTP2SettingsFromSNIServer: on a TLS port the HTTP/2 connection's
// settings (http2_max_concurrent_streams, http2_body_preread_size) and its
// header limits come from the server the client's SNI chose, as nginx's
// (its connection's configuration switches to that server during the
// handshake), and from the default server without a match.
func TestHTTP2SettingsFromSNIServer(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "h2.test")
	conf := fmt.Sprintf(`
ssl_certificate %s;
ssl_certificate_key %s;
server {
    listen 127.0.0.1:{{PORT}} ssl http2;
    server_name def;
    location / { return 200 "def"; }
}
server {
    listen 127.0.0.1:{{PORT}} ssl http2;
    server_name small;
    http2_max_concurrent_streams 7;
    http2_body_preread_size 1000;
    large_client_header_buffers 2 512;
    location / { return 200 "small"; }
}`, crt, key)
	a := startServer(t, "nginx", ServerOptions{HTTP: conf})
	b := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	for _, sni := range []string{"small", "def", "other"} {
		run := func(s *Server) string {
			c, err := tls.Dial("tcp", s.Addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(routingTimeout))
			io.WriteString(c, http2.ClientPreface)
			h := &h2Raw{c: c, fr: http2.NewFramer(c, c), dec: hpack.NewDecoder(4096, nil)}
			h.fr.WriteSettings()
			f, err := h.fr.ReadFrame()
			if err != nil {
				return err.Error()
			}
			var got []string
			if sf, ok := f.(*http2.SettingsFrame); ok {
				sf.ForeachSetting(func(s http2.Setting) error {
					if s.ID == http2.SettingMaxConcurrentStreams || s.ID == http2.SettingInitialWindowSize {
						got = append(got, s.String())
					}
					return nil
				})
			}
			// a 600-byte field: past a 512-byte buffer
			h.get(1, "/", sni, "x-long", strings.Repeat("v", 600))
			out := h.until(3*time.Second, func(d string) bool {
				return strings.HasPrefix(d, "HEADERS:1") || strings.HasPrefix(d, "GOAWAY") || d == "EOF"
			})
			if strings.HasPrefix(out, "GOAWAY") || out == "EOF" {
				out = "closed" // nginx says GOAWAY (ENHANCE_YOUR_CALM), ngxsockify closes
			}
			got = append(got, out)
			return strings.Join(got, " ")
		}
		if got, want := run(b), run(a); got != want {
			t.Errorf("SNI %s: got %q, nginx %q", sni, got, want)
		}
	}
}
