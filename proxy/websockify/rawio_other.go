//go:build !unix

package websockify

import "net"

// initRaw leaves the endpoint on plain conn.Read and conn.Write: the
// non-blocking syscalls of rawio_unix.go are Unix's.
func (e *endpoint) initRaw(net.Conn) {}
