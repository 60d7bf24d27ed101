//go:build linux && !386

package websockify

import (
	"syscall"
	"unsafe"
)

// The socket calls of the loops and of Listener, as raw syscalls
// (rawsys_linux.go says why); linux/386 reaches them through socketcall
// (sockcall_linux_386.go).
const (
	sysSocket      = syscall.SYS_SOCKET
	sysConnect     = syscall.SYS_CONNECT
	sysAccept4     = syscall.SYS_ACCEPT4
	sysSetsockopt  = syscall.SYS_SETSOCKOPT
	sysGetsockopt  = syscall.SYS_GETSOCKOPT
	sysGetsockname = syscall.SYS_GETSOCKNAME
)

func sockcall(call, a1, a2, a3, a4, a5 uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(call, a1, a2, a3, a4, a5, 0)
	return r, e
}

// accept4 accepts a connection, non-blocking and close-on-exec, through
// syscall.Syscall6: Listener's goroutine has just been woken by the
// netpoller, and the runtime must hear of it (rawsys_linux.go).
func accept4(fd uintptr, rsa *syscall.RawSockaddrAny, n *uint32) (uintptr, syscall.Errno) {
	r, _, e := syscall.Syscall6(sysAccept4, fd, uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(n)),
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	return r, e
}
