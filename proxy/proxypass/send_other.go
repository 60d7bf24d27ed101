//go:build !unix

package proxypass

import (
	"net"

	"ngxsockify/netpeek"
)

// Sender writes nothing here: the caller's ordinary write and read do it
// all.
type Sender struct{}

// Send returns 0: nothing written; with check, ErrStale for a connection
// netpeek does not find alive.
func (*Sender) Send(c net.Conn, _ []byte, check bool) (int, error) {
	if check && !netpeek.Alive(c) {
		return 0, ErrStale
	}
	return 0, nil
}

// Exchange is Send: nothing is read either.
func (s *Sender) Exchange(c net.Conn, p, _ []byte, check bool) (sent, got int, err error) {
	n, err := s.Send(c, p, check)
	return n, 0, err
}
