package http1

import (
	"sync/atomic"
	"time"

	"ngxsockify/netpeek"
)

// aLongTimeAgo is a deadline in the past: it wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// WatchClose watches the client's side of the connection while the
// handler waits on something else, as nginx watches it during a proxied
// request (ngx_http_upstream_check_broken_connection): gone runs, once, on
// the watcher's goroutine, when the client closes (or half-closes) or
// resets the connection before stop is called, with the read's error
// (io.EOF for a close). Bytes the client sends
// meanwhile stay buffered for the next request, and end the watch: only
// the request's body must have been read whole, so nothing else reads the
// connection until stop returns. stop ends the watch and waits for it.
func (w *response) WatchClose(gone func(err error)) (stop func()) {
	c := w.c
	if c.hijacked || c.br.Buffered() > 0 || c.body != nil && !c.body.done {
		return noWatch
	}
	wt := c.watch
	switch {
	case wt == nil:
		// made once per connection, for its requests' watches
		wt = newWatcher(c)
		c.watch = wt
	case wt.on:
		wt = newWatcher(c) // another watch runs: this one has its own
	}
	wt.gone, wt.on = gone, true
	wt.stopping.Store(false)
	c.setReadDeadline(time.Time{})
	c.watching.Store(true)
	go wt.run()
	return wt.stopFunc
}

func noWatch() {}

// watcher is a connection's WatchClose state, which its watches reuse
// (one at a time: a request's watch is stopped before it ends).
type watcher struct {
	c        *conn
	gone     func(err error)
	stopping atomic.Bool
	on       bool          // a watch runs: stop has yet to be called
	done     chan struct{} // the watching goroutine's end: one token per watch
	stopFunc func()        // stop, as WatchClose returns it
}

func newWatcher(c *conn) *watcher {
	wt := &watcher{c: c, done: make(chan struct{}, 1)}
	wt.stopFunc = wt.stop
	return wt
}

// run watches on its own goroutine.
func (wt *watcher) run() {
	c := wt.c
	if _, err := c.br.Peek(1); err != nil && !wt.stopping.Load() && !isTimeout(err) {
		c.closed.Store(true)
		wt.gone(err)
	}
	wt.done <- struct{}{}
}

// stop ends the watch and waits for its goroutine; once it returned,
// another call does nothing.
func (wt *watcher) stop() {
	if !wt.on {
		return
	}
	wt.on = false
	c := wt.c
	wt.stopping.Store(true)
	c.watching.Store(false)
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-wt.done
	wt.gone = nil
	c.setReadDeadline(time.Time{})
}

// Gone reports, from any goroutine, whether the client closed or reset
// the connection while WatchClose watched it: the watch saw it, or the
// socket holds the close the watch has yet to read. Such a request is
// about to end. limit_conn asks it of the requests that hold a key's
// counts before it refuses another: in nginx's one event loop, a client's
// close of one connection is handled before the request it then sends on
// another (nginx-tests limit_conn.t), while here the two goroutines race.
func (w *response) Gone() bool {
	c := w.c
	if c.closed.Load() {
		return true
	}
	return c.watching.Load() && netpeek.Closed(c.sock)
}

// Closed is Gone for a request that watches the connection soon, if not
// yet (proxy_pass's first millisecond of waiting for the backend's head):
// whether the client closed or reset it, from a look at the socket.
func (w *response) Closed() bool {
	c := w.c
	return c.closed.Load() || netpeek.Closed(c.sock)
}
