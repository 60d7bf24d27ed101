package websockify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDrain: Drain waits for tunnels to end on their own: it gives up with
// ctx while one runs (the tunnel still works), returns once it ends, and
// leaves the registry open to new tunnels.
func TestDrain(t *testing.T) {
	checkNoLeak(t)
	tg := newTarget(t, echo)
	rl := newRelay(t, tg.dialer(), Options{})
	c, _ := dial(t, rl.url())
	waitLen(t, rl.tunnels, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if err := rl.tunnels.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a tunnel open: %v", err)
	}
	msg := randBytes(100)
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	readN(t, c, len(msg), websocket.BinaryMessage)

	drained := make(chan error, 1)
	go func() { drained <- rl.tunnels.Drain(context.Background()) }()
	c2, _ := dial(t, rl.url()) // taken while draining
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	expectClose(t, c)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a tunnel open", err)
	case <-time.After(200 * time.Millisecond):
	}
	c2.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	expectClose(t, c2)
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Drain: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the last tunnel ended")
	}
}

// TestDrainWaitsForHold: a tunnel held before it is registered (a proxied
// upgrade between its 101 and RelayAsync) keeps Drain waiting until its
// hold ends; once Shutdown has begun nothing can be held.
func TestDrainWaitsForHold(t *testing.T) {
	ts := &Tunnels{}
	if !ts.Hold() {
		t.Fatal("Hold refused on an open registry")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	if err := ts.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain during a hold: %v, want it to wait", err)
	}
	ts.Release()
	if err := ts.Drain(context.Background()); err != nil {
		t.Fatalf("Drain after the hold ended: %v", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	ts.Shutdown(sctx)
	if ts.Hold() {
		t.Error("Hold taken after Shutdown began")
	}
}
