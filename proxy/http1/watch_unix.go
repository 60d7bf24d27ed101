//go:build unix

package http1

import (
	"net"
	"syscall"
)

// peerClosed reports whether the socket's next read would find the
// peer's close (FIN) or reset, without reading: a peek that finds no byte
// and no EAGAIN. A socket with bytes waiting, or no descriptor, is open.
func peerClosed(sock net.Conn) bool {
	sc, ok := sock.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = err == nil && n == 0 || err == syscall.ECONNRESET
	})
	return closed
}
