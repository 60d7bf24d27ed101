//go:build linux

package luahooks

import (
	"errors"
	"net"
	"syscall"
)

// getSockOpt reads a cosocket option with getsockopt, as lua-nginx-module
// does (sndbuf and rcvbuf crossed, as its v0.10.23 reads them).
func getSockOpt(c net.Conn, opt string) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("invalid socket fd")
	}
	level, name := syscall.SOL_SOCKET, 0
	switch opt {
	case "keepalive":
		name = syscall.SO_KEEPALIVE
	case "reuseaddr":
		name = syscall.SO_REUSEADDR
	case "tcp-nodelay":
		level, name = syscall.IPPROTO_TCP, syscall.TCP_NODELAY
	case "sndbuf":
		name = syscall.SO_RCVBUF
	case "rcvbuf":
		name = syscall.SO_SNDBUF
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, name) }); err != nil {
		return 0, err
	}
	if gerr != nil {
		return 0, gerr
	}
	return v, nil
}
