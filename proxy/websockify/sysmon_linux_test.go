package websockify

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestListenerKeepsPreemption: goroutines that got their work through
// Listener's raw accept and the loops' raw reads after the process was
// idle can still be preempted. Go's system monitor (sysmon), which
// preempts a goroutine that runs long, sleeps while every P is idle, and
// only a system call made through entersyscall wakes it, not the
// netpoller's wake-ups. Here as many goroutines as there are Ps spin on
// requests read from Listener's connections, which a client process sends
// after this one was idle: another goroutine made runnable then must run
// within a preemption tick, not when sysmon's sleep ends (the watchdog,
// 5 s; a minute without timers). The stall of
// TestRobustnessLuaLoopsDoNotStarveOthers (test/), with Lua hooks
// spinning, was this. "now": the connections come out of accept with their
// bytes (the accept wakes the process); "late": they wait on a loop first,
// the process is idle meanwhile, and the bytes wake the loop.
func TestListenerKeepsPreemption(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a client process")
	}
	for _, mode := range []string{"now", "late"} {
		t.Run(mode, func(t *testing.T) { testPreemption(t, mode) })
	}
}

func testPreemption(t *testing.T, mode string) {
	checkNoLeak(t)
	const spinners = 2
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(spinners))
	ts := &Tunnels{linger: time.Nanosecond}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mode == "now" {
		// Connections come out of accept with their bytes: their first
		// read does not wait on a loop (no loop starts, the accept alone
		// wakes the process).
		rc, err := raw.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ln := Listener(raw, ts)
	defer ln.Close()
	if _, ok := ln.(*sockListener); !ok {
		t.Skip("no raw-accept Listener")
	}

	var stop atomic.Bool
	defer stop.Store(true)
	watchdog := time.AfterFunc(5*time.Second, func() { stop.Store(true) })
	defer watchdog.Stop()
	started := make(chan struct{})
	var t0 atomic.Int64 // nanotime when the last spinner started
	var spinning atomic.Int32
	go func() {
		for range spinners {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Read(make([]byte, 1)); err != nil {
					return
				}
				if spinning.Add(1) == spinners {
					t0.Store(nanotime())
					close(started)
				}
				for !stop.Load() {
					// No call: only an asynchronous preemption stops it.
				}
			}()
		}
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerPreemptionClient$")
	cmd.Env = append(os.Environ(), "WEBSOCKIFY_PREEMPT_CLIENT="+mode+" "+raw.Addr().String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()

	// This goroutine is made runnable while every P spins: it runs only
	// once one of them is preempted.
	<-started
	late := time.Duration(nanotime() - t0.Load())
	stop.Store(true)
	t.Logf("%s: a goroutine waited %v beside %d spinning ones", mode, late, spinners)
	if late > 2*time.Second {
		t.Errorf("%s: a runnable goroutine waited %v while %d goroutines spun (no preemption: sysmon asleep)", mode, late, spinners)
	}
}

// TestListenerPreemptionClient is TestListenerKeepsPreemption's client
// process: after the server has been idle a while it connects twice and
// sends a byte on each connection, at once ("now") or after another idle
// while ("late"), and holds them until killed.
func TestListenerPreemptionClient(t *testing.T) {
	arg := os.Getenv("WEBSOCKIFY_PREEMPT_CLIENT")
	if arg == "" {
		t.Skip("the client process of TestListenerKeepsPreemption")
	}
	mode, addr, _ := strings.Cut(arg, " ")
	time.Sleep(300 * time.Millisecond)
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			os.Exit(1)
		}
		conns = append(conns, c)
		if mode == "now" {
			c.Write([]byte{'x'})
		}
	}
	if mode == "late" {
		time.Sleep(300 * time.Millisecond)
		for _, c := range conns {
			c.Write([]byte{'x'})
		}
	}
	time.Sleep(time.Minute)
}
