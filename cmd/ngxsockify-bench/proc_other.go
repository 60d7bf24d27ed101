//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// The benchmark is meant for Linux (proc_linux.go); elsewhere it builds,
// leaves the open-files limit alone and kills its children one by one.

func raiseNofile() {}

func childAttr() *syscall.SysProcAttr { return nil }

func killGroup(c *exec.Cmd) { c.Process.Kill() }
