//go:build !linux

package websockify

import (
	"context"
	"errors"
	"net"
	"time"
)

// Without epoll there is no event loop: prepare takes no tunnel, so every
// tunnel runs on the goroutine relay (tunnel.go) and t.ev stays nil. The
// rest only mirrors evloop_linux.go's entry points; none of it is reached.
type loop struct {
	linger time.Duration
	ended  []*tunnel
}

// evTunnel is the event-loop state of a tunnel; no tunnel has one here.
type evTunnel struct {
	l *loop
}

// prepare reports that l cannot relay t: "no loop".
func (l *loop) prepare(*tunnel) bool { return false }

func (l *loop) begin(*tunnel)                                {}
func (l *loop) post(func())                                  {}
func (l *loop) finish(*tunnel)                               {}
func (l *loop) closeWith(*tunnel, int, error, bool)          {}
func (e *evTunnel) discard(*tunnel, []byte) int              { return 0 }
func (e *evTunnel) writeClient(*tunnel, []byte) (int, error) { return 0, net.ErrClosed }
func (e *evTunnel) writeTarget(*tunnel, []byte) error        { return net.ErrClosed }

// reserve fails: there is no loop to dial a target on (Dial).
func (l *loop) reserve() error     { return errors.New("websockify: no event loop") }
func (l *loop) unreserve()         {}
func (l *loop) newTunnel() *tunnel { return &tunnel{ev: &evTunnel{l: l}} }
func (l *loop) dial(context.Context, *tunnel, string, string, time.Duration) (net.Conn, error, bool) {
	return nil, nil, false
}
func (t *tunnel) dialled(net.Conn) bool { return false }
func (t *tunnel) leaveLoop() error      { return nil }
