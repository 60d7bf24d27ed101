package websockify

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goid is the calling goroutine's number (tests only).
func goid() int {
	var b [64]byte
	s := b[:runtime.Stack(b[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	n, _ := strconv.Atoi(string(s[:bytes.IndexByte(s, ' ')]))
	return n
}

// TestDoneOnLoop: a tunnel whose Options say DoneOnLoop reports its end
// on its event loop's goroutine; others on a reporter goroutine. Both
// report the same Result, and leave Tunnels after done returns.
func TestDoneOnLoop(t *testing.T) {
	if goroutineRelay {
		t.Skip("goroutine relay")
	}
	checkNoLeak(t)
	tg := newTarget(t, echo)
	ts := &Tunnels{linger: time.Nanosecond}
	ts.SetLoops(1)
	loopG := make(chan int, 10)
	hook := func(tn *tunnel) {
		if tn.ts == ts {
			select {
			case loopG <- goid():
			default: // never block the loop
			}
		}
	}
	testHookAdd.Store(&hook)
	t.Cleanup(func() { testHookAdd.Store(nil) })
	type end struct {
		res  Result
		g    int
		tuns int
	}
	ends := make(chan end, 10)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		o := Options{Logger: quiet, DoneOnLoop: r.URL.Path == "/onloop"}
		res := ServeAsync(w, r, tg.dialer(), o, ts, func(res Result) { ends <- end{res, goid(), ts.Len()} })
		if res.Status != http.StatusSwitchingProtocols {
			t.Errorf("status %d: %v", res.Status, res.Err)
		}
	})
	for _, path := range []string{"/onloop", "/reporter"} {
		c, _ := dial(t, "ws"+strings.TrimPrefix(srv, "http")+path)
		msg := randBytes(100)
		c.WriteMessage(2, msg)
		if got := readN(t, c, len(msg), 2); !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo differs", path)
		}
		c.Close()
		var g int
		select {
		case g = <-loopG:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no tunnel added", path)
		}
		select {
		case e := <-ends:
			if onLoop := e.g == g; onLoop != (path == "/onloop") {
				t.Errorf("%s: done on the loop goroutine: %v", path, onLoop)
			}
			if e.res.BytesReceived < 100 || e.res.BytesSent < 100 || e.res.Err != nil {
				t.Errorf("%s: result %+v", path, e.res)
			}
			if e.tuns != 1 {
				t.Errorf("%s: %d tunnels while done ran, want 1", path, e.tuns)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: done not called", path)
		}
	}
	waitLen(t, ts, 0)
}
