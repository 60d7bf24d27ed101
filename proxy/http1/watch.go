package http1

import (
	"sync/atomic"
	"time"
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
	go func() {
		defer close(done)
		if _, err := c.br.Peek(1); err != nil && !stopping.Load() && !isTimeout(err) {
			gone(err)
		}
	}()
	return func() {
		stopping.Store(true)
		c.rwc.SetReadDeadline(aLongTimeAgo)
		<-done
		c.setReadDeadline(time.Time{})
	}
}
