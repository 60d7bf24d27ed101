package test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// listen ... proxy_protocol against nginx: PROXY protocol headers (v1, v2,
// broken ones, split ones, one alone before the request) sent raw to both
// servers, the replies compared whole, then the error-log lines and the
// access-log lines.

const ppVars = `$remote_addr!$remote_port $realip_remote_addr!$realip_remote_port ` +
	`pp=$proxy_protocol_addr!$proxy_protocol_port pps=$proxy_protocol_server_addr!$proxy_protocol_server_port`

const ppConf = `
log_format pp '` + ppVars + ` "$request" $status';
access_log {{DIR}}/pp.log pp;
set_real_ip_from 127.0.0.1/32;
server {
    listen 127.0.0.1:{{PORT}} proxy_protocol;
    location / { return 200 "` + ppVars + `\n"; }
    # realip in the pre-access phase, access and limits after it: served
    # from files (return would answer in the rewrite phase, before them)
    location /rip {
        real_ip_header proxy_protocol;
        root {{DIR}}/html;
        add_header X-Vars "` + ppVars + `";
    }
    location /deny {
        real_ip_header proxy_protocol;
        deny 192.0.2.1;
        deny 2001:db8::1;
        root {{DIR}}/html;
    }
    location /limit {
        real_ip_header proxy_protocol;
        limit_req zone=one nodelay;
        root {{DIR}}/html;
    }
}
# HTTP/2 without TLS (prior knowledge) after the header
server {
    listen 127.0.0.1:{{PORT6}} http2 proxy_protocol;
    location / { return 200 "h2c ` + ppVars + `\n"; }
}
# realip in the post-read phase, with the server's settings
server {
    listen 127.0.0.1:{{PORT5}} proxy_protocol;
    real_ip_header proxy_protocol;
    location / { return 200 "` + ppVars + `\n"; }
}
limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
# proxy_protocol on one listen of an address is the address's: both
# servers of {{PORT2}} expect the header
server {
    listen 127.0.0.1:{{PORT2}};
    server_name plain;
    location / { return 200 "plain pp=$proxy_protocol_addr\n"; }
}
server {
    listen 127.0.0.1:{{PORT2}} proxy_protocol;
    server_name other;
    location / { return 200 "other pp=$proxy_protocol_addr\n"; }
}
server {
    listen 127.0.0.1:{{PORT3}};
    location / { return 200 "none [$proxy_protocol_addr] [$proxy_protocol_port]\n"; }
}
server {
    listen 127.0.0.1:{{PORT4}} proxy_protocol;
    client_header_timeout 1s;
    location / { return 200 "slow pp=$proxy_protocol_addr\n"; }
}
`

var ppFiles = map[string]string{"html/rip": "rip\n", "html/deny": "in\n", "html/limit": "limited\n"}

// ppV2 is a version 2 header: the signature, version and command,
// family and transport, and body.
func ppV2(verCmd, famTrans byte, body string) string {
	return "\r\n\r\n\x00\r\nQUIT\n" + string([]byte{verCmd, famTrans, byte(len(body) >> 8), byte(len(body))}) + body
}

var (
	ppInet4  = "\xc0\x00\x02\x01\xc0\x00\x02\x02\x00\x7b\x16\x2e"
	ppInet6  = "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x7b\x16\x2e"
	ppMapped = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x06\x07\x08\x00\x00\x00\x01"
)

const ppGet = "GET / HTTP/1.0\r\n\r\n"

var ppCases = []struct {
	name  string
	port  int      // index into the server's ports
	parts []string // written with a pause between them
}{
	{"v1 tcp4", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n" + ppGet}},
	{"v1 tcp6 as sent", 0, []string{"PROXY TCP6 2001:Db8::1 2001:Db8::2 123 5678\r\n" + ppGet}},
	{"v1 unknown", 0, []string{"PROXY UNKNOWN\r\n" + ppGet}},
	{"v1 unknown with addresses", 0, []string{"PROXY UNKNOWN 1 2 3 4 5 6\r\n" + ppGet}},
	{"v1 port 0", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 0 0\r\n" + ppGet}},
	{"v1 odd address", 0, []string{"PROXY TCP4 abc 1.2.3.4:5 1 2\r\n" + ppGet}},
	{"v1 realip tcp4", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET /rip HTTP/1.0\r\n\r\n"}},
	{"v1 realip tcp6", 0, []string{"PROXY TCP6 2001:Db8::1 2001:Db8::2 123 5678\r\nGET /rip HTTP/1.0\r\n\r\n"}},
	{"v1 realip port 0", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 0 0\r\nGET /rip HTTP/1.0\r\n\r\n"}},
	{"v1 realip bad address", 0, []string{"PROXY TCP4 abc 1.2.3.4 1 2\r\nGET /rip HTTP/1.0\r\n\r\n"}},
	{"v1 realip unknown", 0, []string{"PROXY UNKNOWN\r\nGET /rip HTTP/1.0\r\n\r\n"}},
	{"v1 deny tcp4", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET /deny HTTP/1.0\r\n\r\n"}},
	{"v1 deny tcp6", 0, []string{"PROXY TCP6 2001:DB8::1 ::1 123 5678\r\nGET /deny HTTP/1.0\r\n\r\n"}},
	{"v1 allowed", 0, []string{"PROXY TCP4 192.0.2.9 192.0.2.2 123 5678\r\nGET /deny HTTP/1.0\r\n\r\n"}},
	{"limit_req by the header's address", 0, []string{"PROXY TCP4 198.51.100.7 192.0.2.2 1 2\r\nGET /limit HTTP/1.1\r\nHost: a\r\n\r\nGET /limit HTTP/1.1\r\nHost: a\r\n\r\n"}},
	{"keep-alive keeps the header's addresses", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET /rip HTTP/1.1\r\nHost: a\r\n\r\n", "GET /rip HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}},
	{"header alone, then the request", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n", ppGet}},
	{"v2 header alone, then the request", 0, []string{ppV2(0x21, 0x11, ppInet4), ppGet}},
	{"request in pieces after the header", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET / HT", "TP/1.0\r\n\r\n"}},
	{"v2 tcp4", 0, []string{ppV2(0x21, 0x11, ppInet4) + ppGet}},
	{"v2 tcp6", 0, []string{ppV2(0x21, 0x21, ppInet6) + ppGet}},
	{"v2 mapped", 0, []string{ppV2(0x21, 0x21, ppMapped) + ppGet}},
	{"v2 tlvs skipped", 0, []string{ppV2(0x21, 0x11, ppInet4+"\x04\x00\x03abc\x01\x00\x02h2") + ppGet}},
	{"v2 realip tcp6", 0, []string{ppV2(0x21, 0x21, ppInet6) + "GET /rip HTTP/1.0\r\n\r\n"}},
	{"v2 local", 0, []string{ppV2(0x20, 0x00, "") + ppGet}},
	{"v2 local with addresses", 0, []string{ppV2(0x20, 0x11, ppInet4) + ppGet}},
	{"v2 udp", 0, []string{ppV2(0x21, 0x12, ppInet4) + ppGet}},
	{"v2 unix family", 0, []string{ppV2(0x21, 0x31, strings.Repeat("\x00", 216)) + ppGet}},
	{"v2 unspec family", 0, []string{ppV2(0x21, 0x01, "") + ppGet}},
	{"v2 realip local", 0, []string{ppV2(0x20, 0x00, "") + "GET /rip HTTP/1.0\r\n\r\n"}},

	{"no header", 0, []string{ppGet}},
	{"header split", 0, []string{"PROXY TCP4 192.0.2.1 192.0.", "0.2 123 5678\r\n" + ppGet}},
	{"v1 bad port", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 65536\r\n" + ppGet}},
	{"v1 no LF", 0, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\rX" + ppGet}},
	{"v1 unknown unended", 0, []string{"PROXY UNKNOWN 1 2 3"}},
	{"v1 lowercase", 0, []string{"proxy TCP4 192.0.2.1 192.0.2.2 123 5678\r\n" + ppGet}},
	{"v2 version 1", 0, []string{ppV2(0x11, 0x11, ppInet4) + ppGet}},
	{"v2 split", 0, []string{ppV2(0x21, 0x11, ppInet4)[:20], ppV2(0x21, 0x11, ppInet4)[20:] + ppGet}},
	{"v2 short address block", 0, []string{ppV2(0x21, 0x11, "\x01\x02\x03\x04") + ppGet}},
	{"v2 fixed part split", 0, []string{ppV2(0x21, 0x11, ppInet4)[:14], ppV2(0x21, 0x11, ppInet4)[14:] + ppGet}},

	{"shared address, other server", 1, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.0\r\nHost: plain\r\n\r\n"}},
	{"shared address, without the header", 1, []string{"GET / HTTP/1.0\r\nHost: plain\r\n\r\n"}},
	{"server-level realip", 4, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n" + ppGet}},
	{"server-level realip tcp6", 4, []string{"PROXY TCP6 2001:Db8::1 2001:Db8::2 123 5678\r\n" + ppGet}},
	{"server-level realip local", 4, []string{ppV2(0x20, 0x00, "") + ppGet}},
	{"listen without proxy_protocol", 2, []string{ppGet}},
	{"listen without proxy_protocol, header sent", 2, []string{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + ppGet}},
}

// ppMask hides the client's own port, which differs per connection, and
// the values that differ by nature.
var ppMask = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1!\d+`), "127.0.0.1!PORT"},
	{regexp.MustCompile(`(?m)^(Server|Date|Last-Modified): [^\r]*`), "$1: *"},
	{regexp.MustCompile(`(?m)^ETag: "[^"]*"`), `ETag: "*"`},
}

var ppRefusedLine = regexp.MustCompile(`"PROXY [^"]*" 400`)

func maskPP(s string) string {
	for _, m := range ppMask {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

// ppExchange writes parts to addr, pausing between them so that each
// arrives in a read of its own, and reads until the server closes or
// stays silent for quiet.
func ppExchange(t *testing.T, addr string, parts []string, quiet time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range parts {
		if i > 0 {
			time.Sleep(150 * time.Millisecond)
		}
		if _, err := io.WriteString(c, p); err != nil {
			return "[write failed]"
		}
	}
	return readTranscript(c, quiet)
}

func startPPPair(t *testing.T, conf string, files map[string]string) [2]*Server {
	t.Helper()
	o := ServerOptions{HTTP: conf, Files: files}
	return [2]*Server{startServer(t, "nginx", o), startServer(t, "ngxsockify", o)}
}

// TestProxyProtocolOracle: the replies, then the error-log lines nginx
// writes for refused headers and the access-log lines, on both servers.
func TestProxyProtocolOracle(t *testing.T) {
	srv := startPPPair(t, ppConf, ppFiles)
	for _, tc := range ppCases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, s := range srv {
				got[i] = maskPP(ppExchange(t, "127.0.0.1:"+itoa(s.Ports[tc.port]), tc.parts, 300*time.Millisecond))
			}
			if got[0] != got[1] {
				t.Errorf("sent %q\n--- nginx\n%s\n--- ngxsockify\n%s", tc.parts, got[0], got[1])
			}
		})
	}
	// the error-log lines of the refused headers, in order, without the
	// time, pid and connection number
	var elog [2][]string
	line := regexp.MustCompile(`\[(error|info)\] \d+#\d+: \*\d+ (.*(PROXY protocol|header is too large).*)`)
	for i, s := range srv {
		text := strings.ReplaceAll(s.ErrorLog(), "\r\n", `\r\n`)
		for j, p := range s.Ports {
			text = strings.ReplaceAll(text, "127.0.0.1:"+itoa(p), "127.0.0.1:{{PORT"+itoa(j+1)+"}}")
		}
		for _, m := range line.FindAllStringSubmatch(text, -1) {
			elog[i] = append(elog[i], m[1]+" "+m[2])
		}
	}
	if strings.Join(elog[0], "\n") != strings.Join(elog[1], "\n") {
		t.Errorf("error-log lines\n--- nginx\n%s\n--- ngxsockify\n%s", strings.Join(elog[0], "\n"), strings.Join(elog[1], "\n"))
	}
	if !strings.Contains(strings.Join(elog[1], "\n"), `broken header: "GET / HTTP/1.0`) {
		t.Errorf("no broken-header line in\n%s", strings.Join(elog[1], "\n"))
	}
	// the access log: one line per request, in the order sent. nginx
	// writes a refused request's line when its lingering close ends, after
	// the client's close reaches it: wait for both logs to hold as many
	// lines before stopping (a stopping worker does not log).
	lines := func(s *Server) int {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "pp.log"))
		return strings.Count(string(b), "\n")
	}
	for deadline := time.Now().Add(3 * time.Second); lines(srv[0]) != lines(srv[1]) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	var alog [2]string
	for i, s := range srv {
		s.Stop()
		b, _ := os.ReadFile(filepath.Join(s.Dir, "pp.log"))
		// $request of a request line nginx refuses is the line as
		// received; ngxsockify's is rebuilt (a difference of its own)
		alog[i] = ppRefusedLine.ReplaceAllString(maskPP(string(b)), `"PROXY ..." 400`)
	}
	if alog[0] != alog[1] {
		t.Errorf("access log\n--- nginx\n%s\n--- ngxsockify\n%s", alog[0], alog[1])
	}
}

// TestProxyProtocolH2C: HTTP/2 with prior knowledge after the header, on
// a plain http2 listener (nginx 1.22 reads the header in its HTTP/2 state
// machine).
func TestProxyProtocolH2C(t *testing.T) {
	srv := startPPPair(t, ppConf, ppFiles)
	for _, header := range []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n", ppV2(0x21, 0x21, ppInet6)} {
		var got [2]string
		for i, s := range srv {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(s.Ports[5]), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			got[i] = h2GetOn(t, &ppConn{Conn: c, header: header}, "/")
			c.Close()
		}
		if maskPP(got[0]) != maskPP(got[1]) || !strings.Contains(got[1], "pp=") {
			t.Errorf("header %q\n--- nginx\n%s\n--- ngxsockify\n%s", header, got[0], got[1])
		}
	}
}

// TestProxyProtocolTimeout: the header must come within
// client_header_timeout; nginx logs the timeout at info.
func TestProxyProtocolTimeout(t *testing.T) {
	srv := startPPPair(t, ppConf, ppFiles)
	for _, s := range srv {
		start := time.Now()
		got := ppExchange(t, "127.0.0.1:"+itoa(s.Ports[3]), nil, 3*time.Second)
		if got != "[closed]" || time.Since(start) > 2500*time.Millisecond {
			t.Errorf("%s: %q after %v, want [closed] after 1s", s.Kind, got, time.Since(start))
		}
		want := "client timed out (110: Connection timed out) while reading PROXY protocol, client: 127.0.0.1, server: 127.0.0.1:" + itoa(s.Ports[3])
		waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), want) }, s.Kind+"'s timeout line")
	}
}

// ppTLSConf serves TLS after the header, on an ssl listener and on an
// ssl http2 one.
const ppTLSConf = `
log_format pp '` + ppVars + ` "$request" $status $ssl_protocol';
access_log {{DIR}}/pp.log pp;
set_real_ip_from 127.0.0.1/32;
server {
    listen 127.0.0.1:{{PORT}} ssl proxy_protocol;
    listen 127.0.0.1:{{PORT2}} ssl http2 proxy_protocol;
    ssl_certificate localhost.crt;
    ssl_certificate_key localhost.key;
    location / { return 200 "` + ppVars + ` $https\n"; }
    location /rip { real_ip_header proxy_protocol; return 200 "` + ppVars + ` $https\n"; }
}
`

// ppConn writes header before the first write through it: the header
// alone first (alone), or with the first write in one segment.
type ppConn struct {
	net.Conn
	header string
	alone  bool
}

func (c *ppConn) Write(p []byte) (int, error) {
	if c.header != "" {
		h := c.header
		c.header = ""
		if c.alone {
			if _, err := io.WriteString(c.Conn, h); err != nil {
				return 0, err
			}
			time.Sleep(100 * time.Millisecond)
		} else {
			n, err := c.Conn.Write(append([]byte(h), p...))
			return max(n-len(h), 0), err
		}
	}
	return c.Conn.Write(p)
}

// TestProxyProtocolTLS: the header comes before the TLS handshake, with
// the ClientHello or alone; HTTP/1.1 and (on the http2 listener) h2.
func TestProxyProtocolTLS(t *testing.T) {
	dir := t.TempDir()
	_, crt, key := writeCert(t, dir, "localhost")
	crtPEM, _ := os.ReadFile(crt)
	keyPEM, _ := os.ReadFile(key)
	srv := startPPPair(t, ppTLSConf, map[string]string{"localhost.crt": string(crtPEM), "localhost.key": string(keyPEM)})
	cases := []struct {
		name, header, path string
		alone, h2          bool
	}{
		{"v1 with the ClientHello", "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n", "/", false, false},
		{"v1 alone", "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n", "/rip", true, false},
		{"v2 tcp6", ppV2(0x21, 0x21, ppInet6), "/rip", false, false},
		{"v2 local", ppV2(0x20, 0x00, ""), "/rip", false, false},
		{"h2 v1", "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n", "/rip", false, true},
		{"h2 v2 alone", ppV2(0x21, 0x11, ppInet4), "/rip", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, s := range srv {
				port := s.Ports[0]
				protos := []string{"http/1.1"}
				if tc.h2 {
					port, protos = s.Ports[1], []string{"h2"}
				}
				raw, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(10 * time.Second))
				tc2 := tls.Client(&ppConn{Conn: raw, header: tc.header, alone: tc.alone},
					&tls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: protos})
				if err := tc2.Handshake(); err != nil {
					got[i] = "handshake: " + err.Error()
					continue
				}
				if tc.h2 {
					got[i] = h2GetOn(t, tc2, tc.path)
					continue
				}
				io.WriteString(tc2, "GET "+tc.path+" HTTP/1.0\r\nHost: localhost\r\n\r\n")
				b, _ := io.ReadAll(tc2)
				_, body, _ := strings.Cut(string(b), "\r\n\r\n")
				got[i] = body
			}
			if maskPP(got[0]) != maskPP(got[1]) || !strings.Contains(got[1], "pp=") {
				t.Errorf("--- nginx\n%s\n--- ngxsockify\n%s", got[0], got[1])
			}
		})
	}
	// a plain request to the TLS port after the header: 400, as nginx
	for _, s := range srv {
		got := ppExchange(t, "127.0.0.1:"+itoa(s.Ports[0]), []string{"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n" + ppGet}, time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 400") || !strings.Contains(got, "The plain HTTP request was sent to HTTPS port") {
			t.Errorf("%s: plain HTTP after the header: %q", s.Kind, got)
		}
	}
}

// h2GetOn sends one GET over an HTTP/2 connection (prior knowledge of the
// framing: the preface, an empty SETTINGS, one HEADERS with literal
// fields) and returns the DATA frames' bytes.
func h2GetOn(t *testing.T, c net.Conn, path string) string {
	t.Helper()
	frame := func(typ, flags byte, stream uint32, p []byte) []byte {
		n := len(p)
		h := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
		return append(h, p...)
	}
	lit := func(name, value string) []byte {
		// literal header field without indexing, new name (RFC 7541 6.2.2)
		b := []byte{0x00, byte(len(name))}
		b = append(b, name...)
		b = append(b, byte(len(value)))
		return append(b, value...)
	}
	var hdr []byte
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", path}, {":authority", "localhost"}} {
		hdr = append(hdr, lit(f[0], f[1])...)
	}
	out := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	out = append(out, frame(0x4, 0, 0, nil)...)
	out = append(out, frame(0x1, 0x5, 1, hdr)...) // END_STREAM | END_HEADERS
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var body []byte
	for {
		var h [9]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return string(body) + "[" + err.Error() + "]"
		}
		n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return string(body) + "[" + err.Error() + "]"
		}
		stream := uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])
		switch {
		case h[3] == 0x4 && h[4]&1 == 0: // SETTINGS: acknowledge
			c.Write(frame(0x4, 0x1, 0, nil))
		case h[3] == 0x0 && stream == 1:
			body = append(body, p...)
			if h[4]&1 != 0 {
				return string(body)
			}
		case h[3] == 0x3 || h[3] == 0x7: // RST_STREAM, GOAWAY
			return string(body) + "[reset]"
		}
	}
}

// TestProxyProtocolUpgrade: a proxy_pass upgrade through a
// proxy_protocol listener: the backend gets the header's address (realip)
// and bytes flow both ways after the 101, on both servers.
func TestProxyProtocolUpgrade(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		var xff string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if v, ok := strings.CutPrefix(l, "X-Real-IP: "); ok {
				xff = strings.TrimSpace(v)
			}
			if l == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\nX-Seen: "+xff+"\r\n\r\n")
		io.Copy(c, br)
	})
	conf := `
set_real_ip_from 127.0.0.1/32;
real_ip_header proxy_protocol;
server {
    listen 127.0.0.1:{{PORT}} proxy_protocol;
    location /up {
        proxy_pass http://` + ln.Addr().String() + `;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection upgrade;
        proxy_set_header X-Real-IP $remote_addr;
    }
}`
	for _, s := range startPPPair(t, conf, nil) {
		c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "PROXY TCP4 203.0.113.5 192.0.2.2 4000 80\r\nGET /up HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(c)
		var head []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the 101: %v (%q)", s.Kind, err, head)
			}
			if l == "\r\n" {
				break
			}
			head = append(head, strings.TrimSpace(l))
		}
		if !strings.HasPrefix(head[0], "HTTP/1.1 101") || !slices.Contains(head, "X-Seen: 203.0.113.5") {
			t.Errorf("%s: %q", s.Kind, head)
		}
		io.WriteString(c, "ping")
		got := make([]byte, 4)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
			t.Errorf("%s: echo %q, %v", s.Kind, got, err)
		}
	}
}

// TestProxyProtocolUnixIPv6: the HTTP halves of proxy_protocol_unix.t and
// proxy_protocol_ipv6.t (whose balancer is nginx's stream module, which
// ngxsockify has not): a header on a unix socket and on an IPv6 listener,
// with and without realip.
func TestProxyProtocolUnixIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback")
	} else {
		ln.Close()
	}
	conf := `
server {
    listen 127.0.0.1:{{PORT}};
    listen [::1]:{{PORT2}} proxy_protocol;
    listen unix:{{DIR}}/pp.sock proxy_protocol;
    real_ip_header proxy_protocol;
    location / { return 200 "ra=$remote_addr pp=$proxy_protocol_addr\n"; }
    location /pp {
        set_real_ip_from unix:;
        set_real_ip_from ::1;
        root {{DIR}}/html;
        add_header X-Vars "ra=$remote_addr!$remote_port pp=$proxy_protocol_addr";
    }
}`
	srv := startPPPair(t, conf, map[string]string{"html/pp": "pp\n"})
	for _, path := range []string{"/", "/pp"} {
		var got [2]string
		for i, s := range srv {
			for _, to := range [][2]string{{"tcp6", "[::1]:" + itoa(s.Ports[1])}, {"unix", filepath.Join(s.Dir, "pp.sock")}} {
				c, err := net.DialTimeout(to[0], to[1], 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET "+path+" HTTP/1.0\r\n\r\n")
				b, _ := io.ReadAll(c)
				c.Close()
				got[i] += to[0] + ": " + maskPP(string(b)) + "\n"
			}
		}
		got[0] = regexp.MustCompile(`::1!\d+`).ReplaceAllString(got[0], "::1!PORT")
		got[1] = regexp.MustCompile(`::1!\d+`).ReplaceAllString(got[1], "::1!PORT")
		if got[0] != got[1] {
			t.Errorf("%s\n--- nginx\n%s\n--- ngxsockify\n%s", path, got[0], got[1])
		}
	}
}

// TestProxyProtocolPerAddress: on a port with a wildcard listen, as in
// nginx, proxy_protocol belongs to the address a connection came to: the
// wildcard's (here with it) or a specific address's (here without).
func TestProxyProtocolPerAddress(t *testing.T) {
	conf := `
server {
    listen {{PORT}} proxy_protocol;
    location / { return 200 "wildcard pp=$proxy_protocol_addr\n"; }
}
server {
    listen 127.0.0.2:{{PORT}};
    location / { return 200 "specific pp=$proxy_protocol_addr\n"; }
}`
	srv := startPPPair(t, conf, nil)
	for _, tc := range []struct{ host, sent string }{
		{"127.0.0.1", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + ppGet},
		{"127.0.0.1", ppGet},
		{"127.0.0.2", ppGet},
		{"127.0.0.2", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + ppGet},
	} {
		var got [2]string
		for i, s := range srv {
			got[i] = maskPP(ppExchange(t, tc.host+":"+itoa(s.Port), []string{tc.sent}, time.Second))
		}
		if got[0] != got[1] || !strings.Contains(got[1], "[closed]") {
			t.Errorf("%s %q\n--- nginx\n%s\n--- ngxsockify\n%s", tc.host, tc.sent, got[0], got[1])
		}
	}
}
