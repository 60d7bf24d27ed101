package websockify

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRetire: Retire ends the tunnels of one generation, on both engines:
// a websockify tunnel gets a close frame with 1001, an upgraded connection
// (Relay) is closed; the tunnels of another generation go on, and a
// generation with no tunnel left closes nothing.
func TestRetire(t *testing.T) {
	onBothEngines(t, func(t *testing.T, noLoops bool) {
		checkNoLeak(t)
		tg := newTarget(t, echo)
		old := newRelayOn(t, tg.dialer(), Options{Generation: 1}, noLoops)
		cur := newRelayOn(t, tg.dialer(), Options{Generation: 2}, noLoops)
		cur.tunnels = old.tunnels // one registry, as a Server has
		ts := old.tunnels
		oldWS, _ := dial(t, old.url())
		curWS, _ := dial(t, cur.url())
		oldRaw, oldRes := relayPair(t, tg, Options{Generation: 1, Logger: quiet}, ts)
		waitLen(t, ts, 3)

		if n := ts.Retire(1, time.Second); n != 2 {
			t.Errorf("Retire(1) closed %d tunnels, want 2", n)
		}
		if code := expectClose(t, oldWS); code != websocket.CloseGoingAway {
			t.Errorf("the retired tunnel's close code %d, want 1001", code)
		}
		if r := old.result(t); !errors.Is(r.Err, ErrShutdown) {
			t.Errorf("the retired tunnel's Result: %v", r.Err)
		}
		if _, err := oldRaw.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("the retired upgraded connection: %v, want EOF", err)
		}
		if r := waitResult(t, oldRes); !errors.Is(r.Err, ErrShutdown) {
			t.Errorf("the retired upgraded connection's Result: %v", r.Err)
		}

		msg := randBytes(100)
		if err := curWS.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		readN(t, curWS, len(msg), websocket.BinaryMessage)
		waitLen(t, ts, 1) // the retired ones leave after reporting
		if n := ts.Retire(1, time.Second); n != 0 {
			t.Errorf("Retire(1) again closed %d tunnels, want 0", n)
		}
		curWS.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		expectClose(t, curWS)
		cur.result(t)
	})
}
