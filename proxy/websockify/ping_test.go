package websockify

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// onBothEngines runs f on the event loop (where there is one) and on the
// goroutine relay.
func onBothEngines(t *testing.T, f func(t *testing.T, noLoops bool)) {
	for _, noLoops := range []bool{false, true} {
		name := "loop"
		if noLoops {
			name = "goroutines"
		}
		t.Run(name, func(t *testing.T) {
			if !noLoops && !haveLoops {
				t.Skip("no event loops on this system")
			}
			f(t, noLoops)
		})
	}
}

// TestPingAnsweredKeepsTunnel: an idle client that answers the pings
// (gorilla answers with a pong) outlives ReadTimeout several times.
func TestPingAnsweredKeepsTunnel(t *testing.T) {
	onBothEngines(t, func(t *testing.T, noLoops bool) {
		checkNoLeak(t)
		tg := newTarget(t, echo)
		const interval, timeout = 100 * time.Millisecond, 800 * time.Millisecond
		rl := newRelayOn(t, tg.dialer(), Options{ReadTimeout: timeout, PingInterval: interval}, noLoops)
		c, _ := dial(t, rl.url(), "binary")
		pings := make(chan struct{}, 100)
		c.SetPingHandler(func(data string) error {
			pings <- struct{}{}
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		got := make(chan []byte, 1)
		go func() {
			for {
				_, msg, err := c.ReadMessage() // runs the ping handler
				if err != nil {
					close(got)
					return
				}
				got <- msg
			}
		}()
		time.Sleep(5 * timeout / 2)
		if n := len(pings); n < 5 {
			t.Errorf("%d pings in %v with a %v interval", n, 5*timeout/2, interval)
		}
		if err := c.WriteMessage(websocket.BinaryMessage, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		select {
		case msg, ok := <-got:
			if !ok || string(msg) != "still here" {
				t.Fatalf("tunnel did not survive its pinged idle time: %q %v", msg, ok)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no echo")
		}
		c.Close()
		rl.result(t)
	})
}

// TestPingUnansweredCloses: a client that reads the pings and never
// answers is pinged every PingInterval and closed with 1001 (the idle
// timeout's code) ReadTimeout after its last data.
func TestPingUnansweredCloses(t *testing.T) {
	onBothEngines(t, func(t *testing.T, noLoops bool) {
		checkNoLeak(t)
		tg := newTarget(t, echo)
		const interval, timeout = 100 * time.Millisecond, 450 * time.Millisecond
		rl := newRelayOn(t, tg.dialer(), Options{ReadTimeout: timeout, PingInterval: interval}, noLoops)
		start := time.Now()
		rc := rawDial(t, rl, "Sec-WebSocket-Protocol: binary\r\n", nil)
		var pings []time.Duration
		for {
			_, op, payload := rc.readFrame(t)
			if op == opPing {
				if len(payload) != 0 {
					t.Errorf("ping payload %q", payload)
				}
				pings = append(pings, time.Since(start))
				continue
			}
			if op != opClose || len(payload) < 2 {
				t.Fatalf("frame op %#x %q, want pings then a close", op, payload)
			}
			if code := int(payload[0])<<8 | int(payload[1]); code != CloseGoingAway {
				t.Errorf("close code %d, want %d", code, CloseGoingAway)
			}
			break
		}
		closed := time.Since(start)
		// Pings at 100, 200, 300, 400 ms; the close at 450 ms. Loose
		// bounds for a loaded machine: at load 10 on 2 cores a loop
		// once woke 300 ms late, and a late ping is not made up.
		if len(pings) < 2 || len(pings) > 5 || pings[0] < interval/2 {
			t.Errorf("pings at %v, want about one per %v from %v on", pings, interval, interval)
		}
		if closed < timeout || closed > timeout+time.Second {
			t.Errorf("closed after %v, want about %v", closed, timeout)
		}
		rc.c.Write(frame(true, opClose, []byte{0x03, 0xe9}, 0))
		if res := rl.result(t); !errors.Is(res.Err, ErrIdleTimeout) {
			t.Errorf("Err %v, want the idle timeout", res.Err)
		}
	})
}

// TestPingOffByDefault: without PingInterval an idle client gets no ping,
// only the idle timeout's close.
func TestPingOffByDefault(t *testing.T) {
	onBothEngines(t, func(t *testing.T, noLoops bool) {
		checkNoLeak(t)
		tg := newTarget(t, echo)
		rl := newRelayOn(t, tg.dialer(), Options{ReadTimeout: 200 * time.Millisecond}, noLoops)
		rc := rawDial(t, rl, "Sec-WebSocket-Protocol: binary\r\n", nil)
		if _, op, _ := rc.readFrame(t); op != opClose {
			t.Errorf("first frame op %#x, want the close (no pings)", op)
		}
		rc.c.Write(frame(true, opClose, []byte{0x03, 0xe9}, 0))
		rl.result(t)
	})
}
