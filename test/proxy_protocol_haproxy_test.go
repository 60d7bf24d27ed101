package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clientAddr is the address the tests' clients connect from, so that the
// client's address differs from the balancer's (127.0.0.1).
var clientAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}

// TestProxyProtocolWebsockify: a WebSocket tunnel on a proxy_protocol
// listener, the header with the handshake or alone before it; realip makes
// the header's address the client's for allow and the access log.
func TestProxyProtocolWebsockify(t *testing.T) {
	echo := echoTarget(t)
	s := startNgxsockify(t, `
log_format ws '$remote_addr!$remote_port pp=$proxy_protocol_addr "$request" $status';
set_real_ip_from 127.0.0.1;
real_ip_header proxy_protocol;
server {
    listen 127.0.0.1:{{PORT}} proxy_protocol;
    access_log {{DIR}}/ws.log ws;
    location /websockify { websockify_pass `+echo+`; }
    location /only { allow 203.0.113.0/24; deny all; websockify_pass `+echo+`; }
}`)
	dial := func(path, header string, alone bool) (*websocket.Conn, int) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &ppConn{Conn: c, header: header, alone: alone}, nil
			}}
		return wsDialStatus(t, d, "ws://"+s.Addr+path)
	}
	for i, tc := range []struct {
		path, header string
		alone        bool
		status       int
	}{
		{"/websockify", "PROXY TCP4 203.0.113.5 192.0.2.2 4000 80\r\n", false, 101},
		{"/websockify", ppV2(0x21, 0x11, "\xcb\x00\x71\x06\xc0\x00\x02\x02\x0f\xa1\x00\x50"), true, 101},
		{"/only", "PROXY TCP4 203.0.113.7 192.0.2.2 4002 80\r\n", true, 101},
		{"/only", "PROXY TCP4 198.51.100.1 192.0.2.2 4003 80\r\n", false, 403},
	} {
		c, status := dial(tc.path, tc.header, tc.alone)
		if status != tc.status {
			t.Fatalf("case %d: status %d, want %d", i, status, tc.status)
		}
		if c == nil {
			continue
		}
		wsEcho(t, c, strings.Repeat("x", 70000))
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.Close()
	}
	want := []string{
		`203.0.113.5!4000 pp=203.0.113.5 "GET /websockify HTTP/1.1" 101`,
		`203.0.113.6!4001 pp=203.0.113.6 "GET /websockify HTTP/1.1" 101`,
		`203.0.113.7!4002 pp=203.0.113.7 "GET /only HTTP/1.1" 101`,
		`198.51.100.1!4003 pp=198.51.100.1 "GET /only HTTP/1.1" 403`,
	}
	var log string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "ws.log"))
		log = string(b)
		return strings.Count(log, "\n") == len(want)
	}, "the tunnels' access-log lines")
	for _, w := range want {
		if !strings.Contains(log, w+"\n") {
			t.Errorf("no line %q in\n%s", w, log)
		}
	}
}

// TestProxyProtocolHAProxy runs examples/proxy-protocol: Debian's HAProxy
// in front of ngxsockify, sending version 1 headers from its HTTP frontend
// and version 2 from its TCP one. Through both, the client's address (the
// tests connect from 127.0.0.2) is $proxy_protocol_addr and, with realip,
// $remote_addr, and WebSocket tunnels relay bytes both ways.
func TestProxyProtocolHAProxy(t *testing.T) {
	requireNgxsockify(t)
	haproxy := requireTool(t, "haproxy")
	echo := echoTarget(t)
	conf, err := os.ReadFile("../examples/proxy-protocol/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	main := strings.NewReplacer(
		"listen 127.0.0.1:6080 ", "listen 127.0.0.1:{{PORT}} ",
		"websockify_pass 127.0.0.1:5901;", "websockify_pass "+echo+";",
		" logs/", " ",
	).Replace(string(conf))
	s := startServer(t, "ngxsockify", ServerOptions{Main: main})

	hcfg, err := os.ReadFile("../examples/proxy-protocol/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	fronts := freePorts(t, 2)
	web, consoles := "127.0.0.1:"+itoa(fronts[0]), "127.0.0.1:"+itoa(fronts[1])
	hpath := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(hpath, []byte(strings.NewReplacer(
		"127.0.0.1:6000", web,
		"127.0.0.1:6001", consoles,
		"127.0.0.1:6080", s.Addr,
	).Replace(string(hcfg))), 0o644)
	hp := exec.Command(haproxy, "-db", "-f", hpath)
	var hout syncBuffer
	hp.Stdout, hp.Stderr = &hout, &hout
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })
	for _, a := range []string{web, consoles} {
		waitFor(t, func() bool {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
			}
			return err == nil
		}, "haproxy listening on "+a)
	}

	dialer := &net.Dialer{LocalAddr: clientAddr, Timeout: 5 * time.Second}
	whoami := regexp.MustCompile(`^127\.0\.0\.2 127\.0\.0\.2:(\d+) to 127\.0\.0\.1:(\d+)\n$`)
	for _, front := range []string{web, consoles} {
		hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}, Timeout: 5 * time.Second}
		resp, err := hc.Get("http://" + front + "/whoami")
		if err != nil {
			t.Fatalf("%s: %v\nhaproxy: %s", front, err, hout.String())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := whoami.FindStringSubmatch(string(body))
		if m == nil || m[2] != front[len("127.0.0.1:"):] {
			t.Errorf("%s: /whoami says %q", front, body)
		}

		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: dialer.DialContext}
		c, _, err := d.Dial("ws://"+front+"/websockify", nil)
		if err != nil {
			t.Fatalf("%s: %v", front, err)
		}
		payload := make([]byte, 128<<10)
		rand.Read(payload)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, payload); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for len(got) < len(payload) {
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("%s: after %d bytes: %v", front, len(got), err)
			}
			got = append(got, p...)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("%s: the echo differs", front)
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.Close()
	}

	// the access log names the client, via HAProxy
	var log string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "access.log"))
		log = string(b)
		return strings.Count(log, `"GET /websockify HTTP/1.1" 101`) == 2
	}, "the tunnels' access-log lines")
	line := regexp.MustCompile(`(?m)^127\.0\.0\.2:\d+ via 127\.0\.0\.1 "GET /(whoami|websockify) HTTP/1\.1" (200|101) \d+$`)
	if n := len(line.FindAllString(log, -1)); n != 4 {
		t.Errorf("%d of 4 lines name the client via HAProxy:\n%s", n, log)
	}

	// a client that reaches ngxsockify directly sends no header
	if got := ppExchange(t, s.Addr, []string{"GET /whoami HTTP/1.0\r\n\r\n"}, 2*time.Second); got != "[closed]" {
		t.Errorf("without the header: %q", got)
	}
	waitFor(t, func() bool {
		return strings.Contains(s.ErrorLog(), `broken header: "GET /whoami HTTP/1.0`+"\r\n\r\n"+`" while reading PROXY protocol, client: 127.0.0.1, server: `+s.Addr)
	}, "the broken-header line")
}

// wsDialStatus opens a WebSocket with d: the connection and 101, or nil
// and the status that refused it.
func wsDialStatus(t *testing.T, d websocket.Dialer, url string) (*websocket.Conn, int) {
	t.Helper()
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("%s: %v", url, err)
		}
		return nil, resp.StatusCode
	}
	return c, http.StatusSwitchingProtocols
}
