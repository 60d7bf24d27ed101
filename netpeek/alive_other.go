//go:build !unix

package netpeek

import "net"

// Alive cannot peek here: the connection is taken as it is.
func Alive(net.Conn) bool { return true }

// Closed cannot peek here: only a read reports a close.
func Closed(net.Conn) bool { return false }
