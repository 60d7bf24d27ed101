package websockify

import "ngxsockify/proxy/internal/handoff"

// reporters are the goroutines that report the ends of an event loop's
// tunnels (the caller's onDone: logging, metrics, limit_conn's release),
// which the loop must not wait for. The loop hands over the tunnels that
// ended in one round of events together, so that a busy loop readies one
// goroutine for several ends, and a report that blocks holds up only those
// of its round. A goroutine that reported waits to be handed the next
// round's, with the stack reporting grew (handoff); the loop's stop lets
// the waiting ones exit.
type reporters struct {
	turn *handoff.Waiters[[]*tunnel]
}

func newReporters() *reporters {
	return &reporters{turn: handoff.New[[]*tunnel]()}
}

// run reports the ends of ended (which it takes over) on a waiting
// goroutine, or on a new one when none waits.
func (rs *reporters) run(ended []*tunnel) {
	if !rs.turn.Hand(ended) {
		go rs.serve(ended)
	}
}

// close lets the waiting goroutines exit; the loop goroutine, the only
// one that calls run, calls it as it stops.
func (rs *reporters) close() { rs.turn.Close() }

func (rs *reporters) serve(ended []*tunnel) {
	handoff.Grow()
	for ok := true; ok; ended, ok = rs.turn.Wait() {
		for _, t := range ended {
			t.report()
		}
	}
}
