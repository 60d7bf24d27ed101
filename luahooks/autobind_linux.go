package luahooks

import "syscall"

// autobind binds a datagram unix socket to an address of the kernel's
// choice (Linux's autobind: an empty path), as nginx does for a udp
// cosocket's unix peer, so that the peer's answer can reach it. It is a
// net.Dialer's Control.
func autobind(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.Bind(int(fd), &syscall.SockaddrUnix{})
	}); cerr != nil {
		return cerr
	}
	return err
}
