package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadRetiresConnections checks what a reload does to the
// connections that came before it, as nginx's old workers do (measured
// with a master process, as nginx-tests run it: worker_shutdown_timeout.t;
// the harness's nginx runs without one, so this is not differential): an
// idle keep-alive connection closes at once, a request on an older
// connection is answered with "Connection: close", and with
// worker_shutdown_timeout the older connections still open close once it
// has passed.
func TestReloadRetiresConnections(t *testing.T) {
	requireNgxsockify(t)
	main := func(timeout string) string {
		return `
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
` + timeout + `
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{PORT}};
        location / { return 200 "ok"; }
    }
}`
	}
	dial := func(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader) (*http.Response, error) {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
		}
		return resp, err
	}
	closed := func(c net.Conn, br *bufio.Reader, within time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(within))
		_, err := br.ReadByte()
		return err == io.EOF || err != nil && strings.Contains(err.Error(), "reset")
	}
	reload := func(t *testing.T, s *Server) {
		t.Helper()
		n := strings.Count(s.ErrorLog(), "reconfiguring done")
		if err := s.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Count(s.ErrorLog(), "reconfiguring done") > n }, "the reload")
	}

	t.Run("keepalive", func(t *testing.T) {
		s := startServer(t, "ngxsockify", ServerOptions{Main: main("")})
		idle, idleBR := dial(t, s.Addr)
		if resp, err := get(idle, idleBR); err != nil || resp.Close {
			t.Fatalf("first request: %v (close %v)", err, resp != nil && resp.Close)
		}
		fresh, freshBR := dial(t, s.Addr)
		time.Sleep(100 * time.Millisecond) // accepted before the reload
		reload(t, s)
		if !closed(idle, idleBR, 2*time.Second) {
			t.Error("the idle keep-alive connection stayed open after the reload")
		}
		resp, err := get(fresh, freshBR)
		if err != nil || !resp.Close {
			t.Fatalf("a request on a connection older than the reload: %v, want an answer with Connection: close", err)
		}
		if !closed(fresh, freshBR, 2*time.Second) {
			t.Error("the older connection stayed open after its answer")
		}
		// connections accepted since keep alive
		c, br := dial(t, s.Addr)
		for i := 0; i < 2; i++ {
			if resp, err := get(c, br); err != nil || resp.Close {
				t.Fatalf("request %d on a new connection: %v (close %v)", i, err, resp != nil && resp.Close)
			}
		}
	})

	t.Run("worker_shutdown_timeout", func(t *testing.T) {
		s := startServer(t, "ngxsockify", ServerOptions{Main: main("worker_shutdown_timeout 200ms;")})
		fresh, freshBR := dial(t, s.Addr)
		time.Sleep(100 * time.Millisecond)
		reload(t, s)
		if !closed(fresh, freshBR, 2*time.Second) {
			t.Error("a connection older than the reload stayed open past worker_shutdown_timeout")
		}
		c, br := dial(t, s.Addr)
		time.Sleep(400 * time.Millisecond) // past the timeout: this one is the new configuration's
		if resp, err := get(c, br); err != nil || resp.Close {
			t.Fatalf("a connection accepted after the reload: %v (close %v)", err, resp != nil && resp.Close)
		}
	})
}
