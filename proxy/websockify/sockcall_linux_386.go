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
