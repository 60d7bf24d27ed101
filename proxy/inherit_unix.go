//go:build unix

package proxy

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ListenerFDs returns a duplicate descriptor of every open listening
// socket, for a new binary to inherit (SIGUSR2; the caller closes them),
// and stops this process from removing unix socket files when it closes
// its listeners: they belong to both processes now.
//
// The descriptors are taken through SyscallConn, not (*os.File).Fd, which
// would switch the socket, shared with this process, to blocking mode: an
// accept of ours could then block past the listener's close.
func (s *Server) ListenerFDs() ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fds []int
	fail := func(err error) ([]int, error) {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, err
	}
	for _, l := range s.ls {
		sc, ok := l.ln.(syscall.Conn)
		if !ok {
			continue
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return fail(fmt.Errorf("listening socket %s: %w", l.ln.Addr(), err))
		}
		dup, derr := -1, error(nil)
		if err := rc.Control(func(fd uintptr) { dup, derr = syscall.Dup(int(fd)) }); err != nil || derr != nil {
			return fail(fmt.Errorf("dup() of listening socket %s failed (%v)", l.ln.Addr(), errors.Join(err, derr)))
		}
		if ul, ok := l.ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		fds = append(fds, dup)
	}
	return fds, nil
}
