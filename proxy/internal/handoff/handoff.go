// Package handoff keeps goroutines that finished their work waiting to be
// handed more, with the stack that work grew. A new goroutine per piece of
// work (a connection, a tunnel's end) costs its creation, the growth of its
// stack (a copy that walks every frame) and its exit; handing the work to a
// goroutine that waits costs a wake-up, which starting one costs too.
package handoff

import (
	"runtime"
	"sync/atomic"
)

// Stack is the stack Grow gives a goroutine: deeper than the work of a
// connection or of a tunnel's end runs, which Go's initial stack is not.
const Stack = 12 << 10

// Grow grows the calling goroutine's stack to hold Stack bytes at once,
// while it holds one frame: one copy instead of one per doubling, each of
// them walking every frame.
//
//go:noinline
func Grow() {
	var b [Stack]byte
	touch(b[:])
}

//go:noinline
func touch(b []byte) { b[0] = 1 }

// MaxIdle is how many goroutines may wait, in all Waiters together (each
// holds a grown stack: a server with many listeners must not keep many
// per listener); more than the pieces of work a burst brings at once
// gains nothing.
var MaxIdle = int32(max(8, 8*runtime.GOMAXPROCS(0)))

// idle counts the goroutines waiting in all Waiters.
var idle atomic.Int32

// Waiters are goroutines waiting to be handed a value of type T. The zero
// value is not ready: use New.
type Waiters[T any] struct {
	turn chan T
}

// New returns a Waiters that none waits on yet.
func New[T any]() *Waiters[T] { return &Waiters[T]{turn: make(chan T)} }

// Hand gives v to a waiting goroutine; false when none waits (the caller
// then starts one).
func (w *Waiters[T]) Hand(v T) bool {
	select {
	case w.turn <- v:
		return true
	default:
		return false
	}
}

// Wait waits for a value; false when MaxIdle goroutines wait already (in
// any Waiters) or after Close: the goroutine should then exit.
//
// Its frame keeps a quarter of a stack grown by Grow in use while it
// waits, so that a garbage collection does not shrink that stack (the
// collector halves the stack of a goroutine using less than a quarter).
//
//go:noinline
func (w *Waiters[T]) Wait() (v T, ok bool) {
	if keepStack {
		var keep [Stack / 3]byte // in the frame; cleared only here
		touch(keep[:])
	}
	if idle.Add(1) > MaxIdle {
		idle.Add(-1)
		return v, false
	}
	v, ok = <-w.turn
	idle.Add(-1)
	return v, ok
}

// keepStack is never set: it makes Wait's frame hold an array that is
// never cleared.
var keepStack bool

// Close makes the waiting goroutines' Wait return false. No Hand may
// follow it (the caller that hands values closes).
func (w *Waiters[T]) Close() { close(w.turn) }
