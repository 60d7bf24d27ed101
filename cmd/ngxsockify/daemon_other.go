//go:build !linux

package main

import (
	"io"

	"ngxsockify/nginxconf"
)

// daemonSupported: on this system `daemon on` runs in the foreground.
const daemonSupported = false

func daemonChild() bool                             { return false }
func daemonize(args []string, stderr io.Writer) int { return 1 }
func daemonReady()                                  {}
func daemonStderr(*nginxconf.Config)                {}
