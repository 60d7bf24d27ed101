package websockify

import (
	"syscall"
	"unsafe"
)

// The event loop's socket calls are raw syscalls: they never block (the
// descriptors are non-blocking), so the goroutine keeps its P instead of
// entering and leaving a syscall, and the runtime does not hand the P to
// another thread when one of them runs long. On loopback a connect() or a
// close() does the whole TCP exchange in the caller's context (tens of
// microseconds): with syscall.Syscall the scheduler's monitor would take
// the P away meanwhile and wake another thread for it, which cost more CPU
// per handshake than the calls themselves (perf, cmd/ngxsockify-bench).
//
// One rule keeps Go's scheduler working around them: a goroutine that the
// netpoller wakes makes its first system call through syscall.Syscall
// (entersyscall), here the loop's first epoll_wait after it slept and
// Listener's accept4. The runtime's monitor (sysmon), which preempts a
// goroutine that has run for 10 ms, sleeps while every P is idle, and
// only entersyscall (or a timer it knew of) wakes it, not a wake-up from
// the netpoller. With raw calls alone, a burst of requests coming to an
// idle process through Listener and the loops left sysmon asleep for up
// to a minute, and Lua hooks in an endless loop kept every P with nothing
// to preempt them: no other request was served (TestListenerKeepsPreemption;
// TestRobustnessLuaLoopsDoNotStarveOthers in test/ stalled so). Go's own
// sockets wake it with every read and write; Listener's connections in
// the netpoller with every read (their writes are raw, fileWrite).

func sysRead(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func sysClose(fd int) {
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
}

func epollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// epollWaitNow is epoll_wait with a zero timeout (epoll_pwait: arm64 has
// no epoll_wait). woken makes it a syscall.Syscall6, for the first call
// after the netpoller woke the loop (see above).
func epollWaitNow(epfd int, events []syscall.EpollEvent, woken bool) (int, error) {
	var n uintptr
	var e syscall.Errno
	if woken {
		n, _, e = syscall.Syscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), 0, 0, 0)
	} else {
		n, _, e = syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), 0, 0, 0)
	}
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
