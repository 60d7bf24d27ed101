//go:build !linux

package websockify

// haveLoops: without epoll every tunnel runs on the goroutine relay.
const haveLoops = false

// isRunning reports whether a goroutine runs l: never, there is no loop.
func (l *loop) isRunning() bool { return false }
