package websockify

import (
	"context"
	"time"
)

// drainPoll is how often Drain looks at the registry. A graceful quit is
// not in a hurry, and polling keeps the registry's hot path (add, remove)
// free of anything for Drain.
const drainPoll = 50 * time.Millisecond

// Drain waits until every tunnel has ended on its own, the handshakes
// under way included, or ctx ends (nginx's graceful quit, which lets open
// connections finish). New tunnels are still taken meanwhile: the caller
// stops accepting connections first. It returns ctx.Err() when tunnels
// remain; Shutdown then closes them with 1001.
func (ts *Tunnels) Drain(ctx context.Context) error {
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for ts.Len() > 0 || ts.starting.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// Hold counts a tunnel about to start outside the handshake (a proxied
// upgrade, between its 101 and RelayAsync) as Serve counts its
// handshakes, so that Drain waits for it rather than letting a graceful
// quit close it unregistered. It reports false, holding nothing, once
// Shutdown has begun; Release ends a hold.
func (ts *Tunnels) Hold() bool {
	if ts.closing.Load() {
		return false
	}
	ts.starting.Add(1)
	return true
}

// Release ends a Hold.
func (ts *Tunnels) Release() { ts.starting.Add(-1) }
