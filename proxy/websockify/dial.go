package websockify

import (
	"context"
	"net"
	"time"

	"ngxsockify/proxy/internal/ctxval"
)

// dialKey is the context key under which Serve hands Dial the tunnel that
// an event loop will relay (see Dial).
type dialKey struct{}

// withDial is ctx handing Dial t (start's, once per tunnel), in t's
// object rather than an allocation of its own.
func (t *tunnel) withDial(ctx context.Context) context.Context {
	t.dctx = ctxval.Value{Context: ctx, Key: dialKey{}, Val: t}
	return &t.dctx
}

// Dial makes one connect attempt to address ("tcp" with an IP literal and
// a port, or "unix" with a path), bounded by timeout and ctx, for a Dialer
// (proxy/upstream dials every server through it).
//
// When ctx comes from Serve and the tunnel will run on an event loop, the
// loop makes the attempt itself, as an nginx worker does: a non-blocking
// connect() whose completion the loop's epoll reports (EPOLLOUT, SO_ERROR
// on failure), its timeout on the loop's timer. The socket then never
// enters Go's netpoller and is not duplicated into the loop afterwards;
// that halves the system calls of a target connection (dial_linux.go).
// Otherwise (no loop, another system, a host name) it is net.Dialer's
// connect, with TCP keepalive off as in nginx (proxy_socket_keepalive off:
// the tunnel's idle timeout ends dead peers); Go sets TCP_NODELAY.
//
// Errors are net.Dialer's: a *net.OpError around the system call's error,
// os.ErrDeadlineExceeded for the timeout, ctx's error when it ends first.
func Dial(ctx context.Context, network, address string, timeout time.Duration) (net.Conn, error) {
	if t, ok := ctx.Value(dialKey{}).(*tunnel); ok {
		if c, err, ok := t.ev.l.dial(ctx, t, network, address, timeout); ok {
			return c, err
		}
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	return d.DialContext(ctx, network, address)
}
