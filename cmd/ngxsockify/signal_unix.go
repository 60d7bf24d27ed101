//go:build unix

package main

import "syscall"

// sigUSR1 reopens the logs, as in nginx.
const sigUSR1 = syscall.SIGUSR1

// kill sends sig to pid (-s).
func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// sigUSR2 starts a new binary on the listening sockets, sigWINCH stops an
// old binary from accepting, as in nginx.
const (
	sigUSR2  = syscall.SIGUSR2
	sigWINCH = syscall.SIGWINCH
)
