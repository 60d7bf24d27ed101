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
	n, err, ok := peek(c, false)
	if !ok {
		return n == 0 && err == nil // not a socket: taken as it is
	}
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}

// Closed reports whether the peer has closed (FIN) or reset the
// connection and nothing is left to read before that, by the same peek;
// false for a connection with bytes waiting, or that cannot be peeked.
// Another goroutine may be blocked reading c meanwhile.
func Closed(c net.Conn) bool {
	n, err, ok := peek(c, true)
	return ok && (err == nil && n == 0 || err == syscall.ECONNRESET)
}

// peek looks at the socket under c (a TLS connection's too) with
// MSG_PEEK|MSG_DONTWAIT. ok is false when there is no socket to look at
// (n and err zero) or it could not be reached (err set). beside: through
// RawConn.Control, which neither waits for a read in progress nor minds
// a read deadline; else through RawConn.Read, which does both.
func peek(c net.Conn, beside bool) (n int, err error, ok bool) {
	if tc, isTLS := c.(interface{ NetConn() net.Conn }); isTLS {
		c = tc.NetConn() // TLS: an alert waiting counts as data
	}
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return 0, nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err, false
	}
	var rerr error
	look := func(fd uintptr) {
		var b [1]byte
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	if beside {
		err = rc.Control(look)
	} else {
		err = rc.Read(func(fd uintptr) bool { look(fd); return true })
	}
	if err != nil {
		return 0, err, false
	}
	return n, rerr, true
}
