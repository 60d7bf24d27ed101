//go:build unix && !linux

package proxypass

import "syscall"

func sysRead(fd int, p []byte) (int, syscall.Errno)  { return errno(syscall.Read(fd, p)) }
func sysWrite(fd int, p []byte) (int, syscall.Errno) { return errno(syscall.Write(fd, p)) }

// sysPeek is a recv of one byte with MSG_PEEK|MSG_DONTWAIT.
func sysPeek(fd int) (int, syscall.Errno) {
	var b [1]byte
	n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return errno(n, err)
}

func errno(n int, err error) (int, syscall.Errno) {
	if err != nil {
		e, ok := err.(syscall.Errno)
		if !ok {
			e = syscall.EIO
		}
		return -1, e
	}
	return n, 0
}
