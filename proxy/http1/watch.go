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
		return func() {}
	}
	var stopping atomic.Bool
	done := make(chan struct{})
	c.setReadDeadline(time.Time{})
	c.watching.Store(true)
	go func() {
		defer close(done)
		if _, err := c.br.Peek(1); err != nil && !stopping.Load() && !isTimeout(err) {
			c.closed.Store(true)
			gone(err)
		}
	}()
	return func() {
		stopping.Store(true)
		c.watching.Store(false)
		c.rwc.SetReadDeadline(aLongTimeAgo)
		<-done
		c.setReadDeadline(time.Time{})
	}
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
