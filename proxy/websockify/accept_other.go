//go:build !linux

package websockify

import (
	"context"
	"net"
)

// Listener returns ln: without event loops no connection is taken over.
func Listener(ln net.Listener, _ *Tunnels) net.Listener { return ln }

// WithConn returns ctx: there is no loop to note.
func WithConn(ctx context.Context, _ net.Conn) context.Context { return ctx }

func loopOf(context.Context) *loop { return nil }
