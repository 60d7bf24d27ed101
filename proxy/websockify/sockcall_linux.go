//go:build linux && !386

package websockify

import "syscall"

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
