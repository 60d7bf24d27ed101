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
func Alive(c net.Conn) bool { return NewPeeker(c).Alive() }

// Peeker is Alive for one connection, made once and asked again each
// time the connection leaves a pool: asking allocates nothing. It belongs
// to whoever holds the connection.
type Peeker struct {
	rc    syscall.RawConn // nil: the connection cannot be peeked at (taken as alive)
	err   bool            // the socket could not be reached
	alive bool
	peek  func(fd uintptr) bool // p.peekFD, bound once
}

// NewPeeker makes the Peeker of c.
func NewPeeker(c net.Conn) *Peeker {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // TLS: an alert waiting counts as data
	}
	p := &Peeker{}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return p
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		p.err = true
		return p
	}
	p.rc = rc
	p.peek = p.peekFD
	return p
}

// Alive reports whether the connection is still open and quiet.
func (p *Peeker) Alive() bool {
	if p.err {
		return false
	}
	if p.rc == nil {
		return true
	}
	p.alive = false
	err := p.rc.Read(p.peek)
	return err == nil && p.alive
}

func (p *Peeker) peekFD(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
}

// Closed reports whether the peer has closed (FIN) or reset the
// connection and nothing is left to read before that, by the same peek;
// false for a connection with bytes waiting, or that cannot be peeked.
// Another goroutine may be blocked reading c meanwhile: the peek goes
// through RawConn.Control, which neither waits for that read nor minds a
// read deadline.
func Closed(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // TLS: an alert waiting counts as data
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var rerr error
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return err == nil && (rerr == nil && n == 0 || rerr == syscall.ECONNRESET)
}
