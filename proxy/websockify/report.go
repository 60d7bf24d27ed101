package websockify

import (
	"runtime"
	"sync/atomic"
)

// reporters are the goroutines that report the ends of an event loop's
// tunnels (the caller's onDone: logging, metrics, limit_conn's release),
// which the loop must not wait for. The loop hands over the tunnels that
// ended in one round of events together, so that a busy loop readies one
// goroutine for several ends, and a report that blocks holds up only those
// of its round. A goroutine that reported waits to be handed the next
// round's, with the stack reporting grew: a new goroutine per round costs
// its creation, a stack grown by a copy and its exit. At most
// maxIdleReporters wait; more exit.
type reporters struct {
	// A send on turn hands a report to a waiting goroutine; a stopped loop
	// closes it (close), and the waiting goroutines exit.
	turn chan []*tunnel
	idle atomic.Int32
}

func newReporters() *reporters {
	return &reporters{turn: make(chan []*tunnel)}
}

// maxIdleReporters is how many goroutines may wait for a loop's reports.
var maxIdleReporters = int32(max(4, 4*runtime.GOMAXPROCS(0)))

// run reports the ends of ended (which it takes over) on a waiting
// goroutine, or on a new one when none waits.
func (rs *reporters) run(ended []*tunnel) {
	select {
	case rs.turn <- ended:
	default:
		go rs.serve(ended)
	}
}

// close lets the waiting goroutines exit; the loop goroutine, the only
// one that calls run, calls it as it stops.
func (rs *reporters) close() { close(rs.turn) }

func (rs *reporters) serve(ended []*tunnel) {
	growStack()
	for ended != nil {
		for _, t := range ended {
			t.report()
		}
		ended = rs.next()
	}
}

// next waits for the next round's ends; nil: enough goroutines wait
// already, or the loop stopped.
//
// Its frame keeps a quarter of the stack in use while it waits, so that a
// garbage collection does not shrink the stack that reporting grew (the
// collector halves the stack of a goroutine using less than a quarter).
//
//go:noinline
func (rs *reporters) next() []*tunnel {
	if keepStack {
		var keep [reportStack / 3]byte // in the frame; cleared only here
		touchStack(keep[:])
	}
	if rs.idle.Add(1) > maxIdleReporters {
		rs.idle.Add(-1)
		return nil
	}
	ended := <-rs.turn
	rs.idle.Add(-1)
	return ended
}

// keepStack is never set: it makes next's frame hold an array that is
// never cleared.
var keepStack bool
