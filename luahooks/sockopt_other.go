//go:build !linux

package luahooks

import (
	"errors"
	"net"
)

// getSockOpt: cosocket options are read on Linux only.
func getSockOpt(net.Conn, string) (int, error) {
	return 0, errors.New("getoption is not supported on this system")
}
