//go:build !unix

package proxy

import "errors"

// ListenerFDs: listening sockets cannot be handed to a new binary here.
func (s *Server) ListenerFDs() ([]int, error) {
	return nil, errors.New("binary upgrade is not supported on this system")
}
