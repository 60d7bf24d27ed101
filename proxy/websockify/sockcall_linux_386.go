package websockify

import (
	"syscall"
	"unsafe"
)

// socketcall(2)'s numbers of the calls sockcall makes.
const (
	sysSocket      = 1
	sysConnect     = 3
	sysGetsockname = 6
	sysSetsockopt  = 14
	sysGetsockopt  = 15
	sysAccept4     = 18
)

func sockcall(call, a1, a2, a3, a4, a5 uintptr) (uintptr, syscall.Errno) {
	args := [5]uintptr{a1, a2, a3, a4, a5}
	r, _, e := syscall.RawSyscall(syscall.SYS_SOCKETCALL, call, uintptr(unsafe.Pointer(&args)), 0)
	return r, e
}

// accept4 is sockcall(sysAccept4, ...) through syscall.Syscall (see
// sockcall_linux.go's).
func accept4(fd uintptr, rsa *syscall.RawSockaddrAny, n *uint32) (uintptr, syscall.Errno) {
	args := [5]uintptr{fd, uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(n)), syscall.SOCK_NONBLOCK | syscall.SOCK_CLOEXEC, 0}
	r, _, e := syscall.Syscall(syscall.SYS_SOCKETCALL, sysAccept4, uintptr(unsafe.Pointer(&args)), 0)
	return r, e
}
