package websockify

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
	"weak"

	"ngxsockify/proxy/http1"
)

// marker is a value in a request's context whose collection the test
// watches.
type marker struct{ _ [64]byte }

type markerKey struct{}

// TestTunnelKeepsNoRequest: a running tunnel on an event loop keeps
// nothing of its request's context (which leads to the request, its
// connection and their buffers), so an idle tunnel costs only its own
// objects. The dial's context once stayed reachable from the tunnel for
// its whole life.
func TestTunnelKeepsNoRequest(t *testing.T) {
	if goroutineRelay {
		t.Skip("goroutine relay: its goroutines hold the request until the tunnel ends")
	}
	checkNoLeak(t)
	tg := newTarget(t, echo)
	ts := &Tunnels{linger: time.Nanosecond}
	ts.SetLoops(1)
	weaks := make(chan weak.Pointer[marker], 1)
	ended := make(chan Result, 1)
	srv := &http1.Server{
		ConnContext: WithConn,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m := new(marker)
			weaks <- weak.Make(m)
			r = r.WithContext(context.WithValue(r.Context(), markerKey{}, m))
			if res := ServeAsync(w, r, tg.dialer(), Options{Logger: quiet}, ts, func(end Result) { ended <- end }); res.Status != http.StatusSwitchingProtocols {
				t.Errorf("handshake: %d %v", res.Status, res.Err)
			}
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(Listener(ln, ts))
	t.Cleanup(func() { srv.Close() })

	c, _ := dial(t, "ws://"+ln.Addr().String()+"/")
	wp := <-weaks
	// The tunnel relays (so it is running), then the marker must go at
	// the next collections while the tunnel stays open.
	msg := []byte("still here")
	if err := c.WriteMessage(2, msg); err != nil {
		t.Fatal(err)
	}
	readN(t, c, len(msg), 2)
	for i := 0; i < 50 && wp.Value() != nil; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if wp.Value() != nil {
		t.Error("the running tunnel still keeps its request's context")
	}
	if err := c.WriteMessage(2, msg); err != nil {
		t.Fatal(err)
	}
	readN(t, c, len(msg), 2)
	c.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not end")
	}
}
