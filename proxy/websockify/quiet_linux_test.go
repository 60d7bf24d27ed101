package websockify

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"ngxsockify/proxy/http1"
)

// TestQuietStart relays through Listener and proxy/http1 as the proxy
// does, where a tunnel starts on its loop without waking it (beginQuiet):
// a frame sent as soon as the 101 arrives, by a client whose request
// waited on the loop (its socket was registered then) or came with the
// connection (beginQuiet registers it); a frame sent once the loop sleeps
// again; a target that speaks first.
func TestQuietStart(t *testing.T) {
	if goroutineRelay {
		t.Skip("goroutine relay")
	}
	checkNoLeak(t)
	greeting := []byte("RFB 003.008\n")
	echoTg := newTarget(t, echo)
	greetTg := newTarget(t, func(c net.Conn) {
		c.Write(greeting)
		echo(c)
	})
	ts := &Tunnels{linger: time.Nanosecond}
	ts.SetLoops(1)
	results := make(chan Result, 10)
	srv := &http1.Server{
		ConnContext: WithConn,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d := echoTg.dialer()
			if r.URL.Path == "/greet" {
				d = greetTg.dialer()
			}
			res := ServeAsync(w, r, d, Options{Logger: quiet}, ts, func(end Result) { results <- end })
			if res.Status != http.StatusSwitchingProtocols {
				http.Error(w, http.StatusText(res.Status), res.Status)
				results <- res
			}
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(Listener(ln, ts))
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		name              string
		path              string
		beforeRequest     time.Duration // the request waits on the loop
		beforeFrame       time.Duration // the loop sleeps before the frame
		greets, sendFrame bool
		// the tunnel starts this long after its 101: the frame sent at
		// once reaches the loop first
		beginLate time.Duration
	}{
		{name: "waited, frame at once", path: "/", beforeRequest: 30 * time.Millisecond, sendFrame: true},
		{name: "request with the connection, frame at once", path: "/", sendFrame: true},
		{name: "waited, frame later", path: "/", beforeRequest: 30 * time.Millisecond, beforeFrame: 30 * time.Millisecond, sendFrame: true},
		{name: "request with the connection, frame later", path: "/", beforeFrame: 30 * time.Millisecond, sendFrame: true},
		{name: "waited, frame before the start", path: "/", beforeRequest: 30 * time.Millisecond, sendFrame: true, beginLate: 30 * time.Millisecond},
		{name: "request with the connection, frame before the start", path: "/", sendFrame: true, beginLate: 30 * time.Millisecond},
		{name: "target speaks first", path: "/greet", greets: true},
		{name: "waited, target speaks first", path: "/greet", beforeRequest: 30 * time.Millisecond, greets: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.beginLate > 0 {
				hook := func(*tunnel) { time.Sleep(tc.beginLate) }
				testHookBegin.Store(&hook)
				defer testHookBegin.Store(nil)
			}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			time.Sleep(tc.beforeRequest)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", tc.path)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("%v %v", resp, err)
			}
			if tc.greets {
				got := make([]byte, 2+len(greeting))
				if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got[2:], greeting) {
					t.Fatalf("greeting %q %v", got, err)
				}
			}
			if tc.sendFrame {
				time.Sleep(tc.beforeFrame)
				msg := []byte("through a quiet start")
				c.Write(frame(true, opBinary, msg, 0))
				got := make([]byte, 2+len(msg))
				if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got[2:], msg) {
					t.Fatalf("echo %q %v", got, err)
				}
			}
			c.Close()
			select {
			case res := <-results:
				if res.Err != nil {
					t.Errorf("tunnel ended with %v", res.Err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no result")
			}
		})
	}
}
