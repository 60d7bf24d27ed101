//go:build !linux

package websockify

import "net"

// Listener returns ln: without event loops no connection is taken over.
func Listener(ln net.Listener) net.Listener { return ln }
