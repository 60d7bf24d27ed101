package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSubFilterStreaming proxies, with proxy_buffering off, a backend that
// writes its body in pieces and waits between them, the patterns cut
// across the pieces: on nginx and ngxsockify alike, what is decided goes to
// the client before the backend sends the rest (only the bytes that may
// begin a match are held), and the whole body comes out the same.
func TestSubFilterStreaming(t *testing.T) {
	requireNginx(t)
	requireNgxsockify(t)
	pieces := []string{"say hello wor", "ld, HEL", "LO again ", "hel"}
	next := make(chan struct{}) // the client saw enough: the backend goes on
	backend := serveConns(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		n := 0
		for _, p := range pieces {
			n += len(p)
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n", n)
		for i, p := range pieces {
			if i > 0 {
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return
				}
			}
			io.WriteString(c, p)
		}
	})
	conf := fmt.Sprintf(`server {
    listen 127.0.0.1:{{PORT}};
    location / {
        proxy_pass http://%s;
        proxy_buffering off;
        sub_filter_once off;
        sub_filter hello "<b>bye</b>";
        sub_filter world earth;
    }
}`, backend)
	// what the client must have seen before each next piece is sent
	early := []string{"say <b>bye</b> ", "say <b>bye</b> earth, ", "say <b>bye</b> earth, <b>bye</b> again "}
	want := "say <b>bye</b> earth, <b>bye</b> again hel"
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, kind, ServerOptions{HTTP: conf})
			c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(8 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.ContentLength != -1 {
				t.Errorf("Content-Length %d kept", res.ContentLength)
			}
			var got []byte
			buf := make([]byte, 256)
			for _, e := range early {
				for len(got) < len(e) {
					n, err := res.Body.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						t.Fatalf("waiting for %q: %v (got %q)", e, err, got)
					}
				}
				if string(got) != e {
					t.Fatalf("before the next piece: %q, want %q", got, e)
				}
				next <- struct{}{}
			}
			rest, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(got) + string(rest); got != want {
				t.Errorf("body %q, want %q", got, want)
			}
			if strings.Contains(s.ErrorLog(), "[alert]") {
				t.Errorf("alerts: %s", s.ErrorLog())
			}
		})
	}
}

// serveConns listens on a loopback port until the test ends and runs
// handle on each connection it accepts (which it then closes); it returns
// the address.
func serveConns(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, handle)
	return ln.Addr().String()
}

// serveOn runs handle on each connection ln accepts (closing it after)
// until the test ends.
func serveOn(t *testing.T, ln net.Listener, handle func(c net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}
