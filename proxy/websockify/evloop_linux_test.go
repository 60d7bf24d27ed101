//go:build linux

package websockify

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// haveLoops: tunnels run on event loops unless WEBSOCKIFY_RELAY=goroutines.
const haveLoops = true

// isRunning reports whether a goroutine runs l.
func (l *loop) isRunning() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running
}

// newLoopRelay is a relay to an echo target for a test of the event loops
// themselves; it skips the test on the goroutine relay.
func newLoopRelay(t *testing.T) *relay {
	t.Helper()
	if goroutineRelay {
		t.Skip("goroutine relay")
	}
	checkNoLeak(t)
	tg := newTarget(t, echo)
	return newRelay(t, tg.dialer(), Options{})
}

// TestLoops spreads tunnels over several event loops (worker_processes) and
// checks that each loop's goroutine ends with its last tunnel.
func TestLoops(t *testing.T) {
	rl := newLoopRelay(t)
	rl.tunnels.linger = 300 * time.Millisecond
	rl.tunnels.SetLoops(3)
	running := func() int {
		n := 0
		for _, l := range rl.tunnels.loops {
			if l.isRunning() {
				n++
			}
		}
		return n
	}
	var conns []*websocket.Conn
	for i := 0; i < 6; i++ {
		c, _ := dial(t, rl.url(), "binary")
		msg := randBytes(1000 + i)
		c.WriteMessage(websocket.BinaryMessage, msg)
		if got := readN(t, c, len(msg), websocket.BinaryMessage); !bytes.Equal(got, msg) {
			t.Fatalf("tunnel %d: echo differs", i)
		}
		conns = append(conns, c)
	}
	if n := running(); n != 3 {
		t.Errorf("%d loops running, want 3", n)
	}
	for _, c := range conns {
		c.Close()
		rl.result(t)
	}
	if n := running(); n != 3 {
		t.Errorf("%d loops running just after the last tunnel, want 3 (they linger)", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for running() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d loops still running without tunnels", running())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Work posted to a stopped loop (a late Shutdown) is dropped: its
	// eventfd is closed and its number may belong to another socket now.
	l := rl.tunnels.loops[0]
	l.post(func() { t.Error("posted work ran on a stopped loop") })
	l.mu.Lock()
	queued := len(l.inbox)
	l.mu.Unlock()
	if queued != 0 || running() != 0 {
		t.Errorf("post to a stopped loop: %d queued, %d loops running", queued, running())
	}
}

// TestLoopPanic: a panic on an event loop (a bug) ends that loop's tunnels
// with ErrInternal, and the loop goes on serving new tunnels.
func TestLoopPanic(t *testing.T) {
	rl := newLoopRelay(t)
	hook := func(tn *tunnel) {
		if len(tn.pending) > 0 { // only the victim sends a frame with its handshake
			panic("boom")
		}
	}
	testHookAdd.Store(&hook)
	t.Cleanup(func() { testHookAdd.Store(nil) })

	rawDial(t, rl, "", frame(true, opBinary, []byte("boom"), 0))
	res := rl.result(t)
	if !errors.Is(res.Err, ErrInternal) || !strings.Contains(res.Err.Error(), "event loop panic: boom") {
		t.Fatalf("victim's result %+v, want ErrInternal with the panic", res)
	}
	for i := 0; i < 2; i++ {
		c, _ := dial(t, rl.url(), "binary")
		c.WriteMessage(websocket.BinaryMessage, []byte("still here"))
		if got := readN(t, c, 10, websocket.BinaryMessage); string(got) != "still here" {
			t.Errorf("tunnel %d after the panic: %q", i, got)
		}
		c.Close()
		rl.result(t)
	}
}
