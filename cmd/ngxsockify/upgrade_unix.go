//go:build unix

package main

import (
	"os"
	"syscall"
)

// startBinary starts self with args and env, its stdin, stdout and stderr
// ours, and fds as its descriptors 3, 4, ... It uses ForkExec on the raw
// descriptors because os/exec takes them through (*os.File).Fd, which
// would switch our listening sockets to blocking mode.
func startBinary(self string, args, env []string, fds []int) (*os.Process, error) {
	files := []uintptr{0, 1, 2}
	for _, fd := range fds {
		files = append(files, uintptr(fd))
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	pid, err := syscall.ForkExec(self, append([]string{os.Args[0]}, args...), &syscall.ProcAttr{Dir: wd, Env: env, Files: files})
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}

// closeFDs closes the duplicates handed to a new binary.
func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
