package test

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHeadersMoreUpgrade: more_set_headers and more_clear_headers change
// the 101 of an upgraded proxy_pass too (ngxsockify writes that head
// itself, outside the header filters): the heads are the same on both
// servers, line for line, and the tunnel then relays.
func TestHeadersMoreUpgrade(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	be := startProxyBackend(t)
	conf := strings.ReplaceAll(`
more_set_headers "Server: mine";
server {
    listen 127.0.0.1:{{PORT}};
    location /set/ {
        more_clear_headers Date;
        more_set_headers "x-got: $http_upgrade" "X-New: n";
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_pass http://BACKEND;
    }
    location /clear/ {
        more_clear_headers Server Date "X-G*";
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_pass http://BACKEND;
    }
}`, "BACKEND", be.addr())
	for _, path := range []string{"/set/upgrade", "/clear/upgrade"} {
		var heads [2]string
		for i, kind := range []string{"nginx", "ngxsockify"} {
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			_, _, heads[i] = upgradeAt(t, s, path)
		}
		if heads[0] != heads[1] {
			t.Errorf("%s: 101 heads differ:\nnginx:\n%s\nngxsockify:\n%s", path, heads[0], heads[1])
		}
	}
}

// TestHeadersMoreWebsockify: websockify_pass's 101 takes the output
// commands too (nginx runs its header filters on every response; it has
// no websockify_pass, so this follows its upgraded proxy_pass): an
// http-level "Server" hides ngxsockify's, -s 101 applies, a clear leaves
// no Server line.
func TestHeadersMoreWebsockify(t *testing.T) {
	requireNgxsockify(t)
	target := serveConns(t, func(net.Conn) { time.Sleep(time.Second) })
	conf := strings.ReplaceAll(`
more_set_headers "Server: hidden";
server {
    listen 127.0.0.1:{{PORT}};
    location /ws { more_set_headers -s 101 "X-Ws: 1"; more_set_headers -s 200 "X-Not: 1"; websockify_pass TARGET; }
    location /ws2 { more_clear_headers Server; websockify_pass TARGET; }
}`, "TARGET", target)
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: conf})
	for path, want := range map[string][]string{"/ws": {"Server: hidden", "X-Ws: 1"}, "/ws2": nil} {
		c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		var got []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the 101: %v (so far %q)", path, err, got)
			}
			if l == "\r\n" {
				break
			}
			l = strings.TrimSuffix(l, "\r\n")
			if strings.HasPrefix(l, "Server:") || strings.HasPrefix(l, "X-") {
				got = append(got, l)
			}
		}
		c.Close()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: 101 has %q, want %q", path, got, want)
		}
	}
}
