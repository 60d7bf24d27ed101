//go:build !unix

package netpeek

import "net"

// Alive cannot peek here: the connection is taken as it is.
func Alive(net.Conn) bool { return true }

// Peeker is Alive for one connection (see the unix version).
type Peeker struct{}

// NewPeeker makes the Peeker of c.
func NewPeeker(net.Conn) *Peeker { return &Peeker{} }

// Alive reports true: the connection is taken as it is.
func (*Peeker) Alive() bool { return true }

// Closed cannot peek here: only a read reports a close.
func Closed(net.Conn) bool { return false }
