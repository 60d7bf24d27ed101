//go:build !unix

package main

import (
	"errors"
	"os"
)

// startBinary: no binary upgrade on this system (proxy.ListenerFDs fails
// first).
func startBinary(string, []string, []string, []int) (*os.Process, error) {
	return nil, errors.New("binary upgrade is not supported on this system")
}

func closeFDs([]int) {}
