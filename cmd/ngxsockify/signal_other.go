//go:build !unix

package main

import (
	"os"
	"syscall"
)

// sigUSR1 stands for a SIGUSR1 this system does not have: no event raises
// it, so logs are not reopened by signal, and -s reopen fails in kill.
const sigUSR1 = syscall.Signal(10)

// sigUSR2 and sigWINCH stand for signals this system does not have either:
// no binary upgrade by signal.
const (
	sigUSR2  = syscall.Signal(12)
	sigWINCH = syscall.Signal(28)
)

// kill sends sig to pid (-s) as far as os.Process.Signal can (on Windows
// only SIGKILL).
func kill(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}
