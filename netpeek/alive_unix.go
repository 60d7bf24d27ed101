//go:build unix

package netpeek

import (
	"net"
	"syscall"
)

// Alive reports whether an idle connection is still open and quiet, by a
// peek that does not wait (a read with a past deadline would not look at
// the socket at all). nginx watches its cached connections and closes one
// the peer closes or writes to; a pool that hands such a connection out
// makes its next request fail.
func Alive(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // TLS: an alert waiting counts as data
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && alive
}
