package proxypass

import (
	"syscall"
	"unsafe"
)

// The Sender's socket calls are raw: the socket is non-blocking, so a call
// never waits, and the goroutine keeps its P rather than entering and
// leaving a syscall (about 600 instructions a call) and letting the
// runtime hand the P to another thread when a loopback write runs long
// (the write delivers to the peer in the caller's context). The request's
// goroutine still makes its first call after a netpoller wake-up through
// syscall.Syscall (the client's read), which keeps the runtime's monitor
// awake (see proxy/websockify's rawsys_linux.go).

func sysRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), 0
}

func sysWrite(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), 0
}

// sysPeek is a recv of one byte with MSG_PEEK|MSG_DONTWAIT.
func sysPeek(fd int) (int, syscall.Errno) {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), 0
}
