//go:build !linux

package luahooks

import "syscall"

// autobind does nothing where the kernel has no autobind: a datagram unix
// socket stays unbound, and its peer cannot answer it.
func autobind(_, _ string, _ syscall.RawConn) error { return nil }
