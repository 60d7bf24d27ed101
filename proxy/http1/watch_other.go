//go:build !unix

package http1

import "net"

// peerClosed cannot look into the socket here: only the watch's own read
// reports a close.
func peerClosed(net.Conn) bool { return false }
