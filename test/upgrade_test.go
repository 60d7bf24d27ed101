package test

// Binary upgrade (SIGUSR2) as nginx's: the new binary takes the listening
// sockets through the NGINX environment variable, the old one keeps its
// tunnels through a graceful quit.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// upgradeTunnels is how many tunnels stream through an upgrade.
const upgradeTunnels = 200

// upgradeStream is one tunnel that sends numbered messages and checks
// that each comes back whole and in order, until stop closes; then it
// closes with 1000 and expects 1000 back.
type upgradeStream struct {
	id       int
	verified atomic.Int64 // bytes echoed and checked
	err      error
}

func (u *upgradeStream) run(url string, ready *sync.WaitGroup, stop <-chan struct{}) {
	c, _, err := (&websocket.Dialer{HandshakeTimeout: 10 * time.Second}).Dial(url, nil)
	ready.Done()
	if err != nil {
		u.err = fmt.Errorf("handshake: %v", err)
		return
	}
	defer c.Close()
	msg := make([]byte, 512)
	for seq := uint64(0); ; seq++ {
		select {
		case <-stop:
			u.err = upgradeClose(c)
			return
		case <-time.After(40 * time.Millisecond):
		}
		binary.BigEndian.PutUint64(msg, uint64(u.id))
		binary.BigEndian.PutUint64(msg[8:], seq)
		for i := 16; i < len(msg); i++ {
			msg[i] = byte(seq) + byte(i)
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			u.err = fmt.Errorf("write of message %d: %v", seq, err)
			return
		}
		var got []byte
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(got) < len(msg) {
			_, p, err := c.ReadMessage()
			if err != nil {
				u.err = fmt.Errorf("read of message %d after %d bytes: %v", seq, len(got), err)
				return
			}
			got = append(got, p...)
		}
		if !bytes.Equal(got, msg) {
			u.err = fmt.Errorf("message %d came back different", seq)
			return
		}
		u.verified.Add(int64(len(msg)))
	}
}

// upgradeClose closes c with 1000 and expects the close answer.
func upgradeClose(c *websocket.Conn) error {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		return fmt.Errorf("write close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return fmt.Errorf("closing: %v, want close 1000", err)
			}
			return nil
		}
	}
}

// upgradeProber opens short tunnels one after another until stop closes,
// counting the ones that worked and the failures.
type upgradeProber struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
}

func (p *upgradeProber) run(url string, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if err := upgradeProbe(url); err != nil {
			p.failed.Add(1)
			p.mu.Lock()
			if p.firstErr == nil {
				p.firstErr = err
			}
			p.mu.Unlock()
			continue
		}
		p.ok.Add(1)
	}
}

func upgradeProbe(url string) error {
	c, _, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial(url, nil)
	if err != nil {
		return fmt.Errorf("handshake: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("probe")); err != nil {
		return err
	}
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "probe" {
		return fmt.Errorf("echo %q, %v", p, err)
	}
	return upgradeClose(c)
}

// readPID reads a pid file (0 when absent or empty).
func readPID(path string) int {
	data, _ := os.ReadFile(path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// waitLong is waitFor with a longer bound, for steps under load.
func waitLong(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out (%v) waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUpgradeUnderLoad: 200 tunnels stream checked bytes while the binary
// is upgraded (USR2) and the old process is told to quit (QUIT). No byte is
// lost or reordered, no tunnel drops, new handshakes work throughout, and
// the old process exits once its last tunnel ends.
func TestUpgradeUnderLoad(t *testing.T) {
	target := echoTarget(t)
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
access_log off;
server {
    listen 127.0.0.1:{{PORT}};
    location /websockify { websockify_pass ` + target + `; }
}`})
	url := "ws://" + s.Addr + "/websockify"
	pidFile := filepath.Join(s.Dir, "nginx.pid")
	oldPID := s.cmd.Process.Pid

	stopStreams, stopProbes := make(chan struct{}), make(chan struct{})
	streams := make([]*upgradeStream, upgradeTunnels)
	var ready, ended sync.WaitGroup
	for i := range streams {
		streams[i] = &upgradeStream{id: i}
		ready.Add(1)
		ended.Add(1)
		go func() {
			defer ended.Done()
			streams[i].run(url, &ready, stopStreams)
		}()
	}
	ready.Wait()
	var prober upgradeProber
	var probing sync.WaitGroup
	probing.Add(1)
	go prober.run(url, stopProbes, &probing)
	defer func() {
		// On a failure: end the clients before the harness stops the servers.
		select {
		case <-stopStreams:
		default:
			close(stopStreams)
		}
		select {
		case <-stopProbes:
		default:
			close(stopProbes)
		}
		ended.Wait()
		probing.Wait()
	}()
	time.Sleep(500 * time.Millisecond)

	// USR2: a new binary starts on the same sockets.
	if err := s.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var newPID int
	waitLong(t, 20*time.Second, func() bool {
		newPID = readPID(pidFile)
		return newPID != 0 && newPID != oldPID && holdsSocket(newPID, listenInodes(s.Port))
	}, "the new binary to write the pid file and hold the listener")
	if got := readPID(pidFile + ".oldbin"); got != oldPID {
		t.Errorf("nginx.pid.oldbin holds %d, want the old pid %d", got, oldPID)
	}
	// A second USR2 while the new binary runs is refused.
	s.Signal(syscall.SIGUSR2)
	waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), "the changing binary signal is ignored") }, "the refused second USR2")
	time.Sleep(500 * time.Millisecond)

	// QUIT to the old one: it stops accepting and keeps its tunnels.
	if err := syscall.Kill(oldPID, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	waitLong(t, 20*time.Second, func() bool { return !holdsSocket(oldPID, listenInodes(s.Port)) }, "the old process to close its listener")
	atQuit := make([]int64, len(streams))
	for i, u := range streams {
		atQuit[i] = u.verified.Load()
	}
	probesAtQuit := prober.ok.Load()
	time.Sleep(time.Second)
	if !alive(oldPID) {
		t.Fatalf("the old process exited with %d tunnels open", upgradeTunnels)
	}
	if prober.ok.Load() == probesAtQuit {
		t.Errorf("no new handshake worked after the old process stopped accepting")
	}

	close(stopStreams)
	ended.Wait()
	dropped, stalled := 0, 0
	var total int64
	for i, u := range streams {
		if u.err != nil {
			dropped++
			if dropped <= 5 {
				t.Errorf("tunnel %d: %v", u.id, u.err)
			}
		}
		if u.verified.Load() == atQuit[i] {
			stalled++
		}
		total += u.verified.Load()
	}
	if dropped > 0 || stalled > 0 {
		t.Errorf("%d tunnels dropped, %d made no progress after QUIT (of %d)", dropped, stalled, upgradeTunnels)
	}
	waitLong(t, 15*time.Second, func() bool { return !alive(oldPID) }, "the old process to exit after its last tunnel")

	close(stopProbes)
	probing.Wait()
	if n := prober.failed.Load(); n > 0 {
		t.Errorf("%d of %d new handshakes failed during the upgrade; first: %v", n, n+prober.ok.Load(), prober.firstErr)
	}
	if err := upgradeProbe(url); err != nil {
		t.Errorf("the new binary after the old one left: %v", err)
	}
	if readPID(pidFile) != newPID || fileExists(pidFile+".oldbin") {
		t.Errorf("pid file %d (want %d), oldbin left: %v", readPID(pidFile), newPID, fileExists(pidFile+".oldbin"))
	}
	t.Logf("%d tunnels, %d bytes checked each way, %d handshakes during the upgrade, old %d, new %d",
		upgradeTunnels, total, prober.ok.Load(), oldPID, newPID)
	if !strings.Contains(s.ErrorLog(), `using inherited sockets from "3;"`) {
		t.Errorf("error.log lacks the new binary's inherited sockets:\n%s", tail(s.ErrorLog(), 30))
	}
	s.Stop()
}

// TestUpgradeNewBinaryFails: when the new binary cannot start (its
// configuration is broken now), the old one takes its pid file back and
// goes on serving.
func TestUpgradeNewBinaryFails(t *testing.T) {
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location / { return 200 "old\n"; }
}`})
	pidFile := filepath.Join(s.Dir, "nginx.pid")
	main, _ := os.ReadFile(s.Conf)
	if err := os.WriteFile(s.Conf, append(main, "bogus;\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGUSR2)
	waitFor(t, func() bool { return strings.Contains(s.ErrorLog(), "exited with code 1") }, "the new binary's failure")
	if readPID(pidFile) != s.cmd.Process.Pid || fileExists(pidFile+".oldbin") {
		t.Errorf("pid file %d, want %d; oldbin left: %v", readPID(pidFile), s.cmd.Process.Pid, fileExists(pidFile+".oldbin"))
	}
	if _, body := httpBody(t, s.URL("/")); body != "old\n" {
		t.Errorf("GET / after the failed upgrade: %q", body)
	}
	if !strings.Contains(s.Output(), `unknown directive "bogus"`) {
		t.Errorf("the new binary's error is not on stderr:\n%s", s.Output())
	}
	// The listener handed over is still non-blocking in the old process:
	// a stop does not hang in accept (it did when os/exec took the
	// descriptor through (*os.File).Fd).
	begin := time.Now()
	s.Signal(syscall.SIGTERM)
	waitFor(t, s.Exited, "the old process to stop")
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("stop took %v", d)
	}
	s.Stop()
}

// answeredBy returns the pids ($pid) that answered n fresh connections to
// /pid on port.
func answeredBy(t *testing.T, port, n int) map[int]bool {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pids := map[int]bool{}
	for i := 0; i < n; i++ {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/pid", port))
		if err != nil {
			t.Fatalf("GET /pid: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pid, _ := strconv.Atoi(string(b))
		pids[pid] = true
	}
	return pids
}

// onlyBy reports whether n fresh connections were all answered by pid.
func onlyBy(t *testing.T, port, n, pid int) bool {
	got := answeredBy(t, port, n)
	return len(got) == 1 && got[pid]
}

// upgradeDaemon is ngxsockify as a daemon (daemon on, a pid file) relaying
// /websockify to an echo target, with /pid telling which process answers.
type upgradeDaemon struct {
	port          int
	main, pidFile string
	url           string
	oldPID        int
	pids          []int // every process started; killed at the end if still running
}

func startUpgradeDaemon(t *testing.T) *upgradeDaemon {
	t.Helper()
	target := echoTarget(t)
	dir := t.TempDir()
	d := &upgradeDaemon{port: freePort(t), main: filepath.Join(dir, "nginx.conf"), pidFile: filepath.Join(dir, "nginx.pid")}
	d.url = fmt.Sprintf("ws://127.0.0.1:%d/websockify", d.port)
	os.WriteFile(d.main, []byte(fmt.Sprintf(`pid %[1]s/nginx.pid;
master_process off;
error_log %[1]s/error.log info;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:%[2]d;
        location /websockify { websockify_pass %[3]s; }
        location = /pid { return 200 $pid; }
    }
}
`, dir, d.port, target)), 0o644)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("error.log:\n%s", b)
		}
		for _, pid := range d.pids {
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("process %d was still running at the end", pid)
			}
		}
	})
	if out, code := runBin(t, "-c", d.main); code != 0 {
		t.Fatalf("start: exit %d, %q", code, out)
	}
	d.oldPID = readPID(d.pidFile)
	d.pids = append(d.pids, d.oldPID)
	return d
}

// upgrade sends USR2 to the old process and returns the new one's pid once
// it wrote the pid file and holds the listener.
func (d *upgradeDaemon) upgrade(t *testing.T) int {
	t.Helper()
	syscall.Kill(d.oldPID, syscall.SIGUSR2)
	var newPID int
	waitLong(t, 20*time.Second, func() bool {
		newPID = readPID(d.pidFile)
		return newPID != d.oldPID && newPID != 0 && holdsSocket(newPID, listenInodes(d.port))
	}, "the new binary")
	d.pids = append(d.pids, newPID)
	return newPID
}

// stopAccepting sends WINCH to the old process and waits until the new
// one alone answers.
func (d *upgradeDaemon) stopAccepting(t *testing.T, newPID int) {
	t.Helper()
	syscall.Kill(d.oldPID, syscall.SIGWINCH)
	waitLong(t, 10*time.Second, func() bool { return onlyBy(t, d.port, 20, newPID) }, "the new process alone to accept")
}

// tunnel opens a tunnel that the test closes.
func (d *upgradeDaemon) tunnel(t *testing.T) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(d.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	wsEcho(t, ws, "before")
	return ws
}

// TestUpgradeWinch: nginx's upgrade steps on a daemon. After USR2, WINCH
// makes the old process stop accepting while its tunnel runs on and the new
// binary serves; QUIT then lets the old one leave at its tunnel's end; -s
// quit stops the new one.
func TestUpgradeWinch(t *testing.T) {
	d := startUpgradeDaemon(t)
	ws := d.tunnel(t)
	newPID := d.upgrade(t)
	d.stopAccepting(t, newPID)
	wsEcho(t, ws, "after WINCH")
	for i := 0; i < 5; i++ {
		if err := upgradeProbe(d.url); err != nil {
			t.Fatalf("new handshake after WINCH: %v", err)
		}
	}
	if !alive(d.oldPID) {
		t.Fatal("the old process left after WINCH")
	}

	syscall.Kill(d.oldPID, syscall.SIGQUIT)
	time.Sleep(200 * time.Millisecond)
	wsEcho(t, ws, "after QUIT")
	if err := upgradeClose(ws); err != nil {
		t.Error(err)
	}
	waitLong(t, 10*time.Second, func() bool { return !alive(d.oldPID) }, "the old process to exit")
	if fileExists(d.pidFile + ".oldbin") {
		t.Error("nginx.pid.oldbin left behind")
	}
	if out, code := runBin(t, "-c", d.main, "-s", "quit"); code != 0 {
		t.Fatalf("-s quit: exit %d, %q", code, out)
	}
	waitLong(t, 10*time.Second, func() bool { return !alive(newPID) }, "the new process to exit")
	if fileExists(d.pidFile) {
		t.Error("pid file left behind")
	}
	data, _ := os.ReadFile(filepath.Join(filepath.Dir(d.main), "error.log"))
	if !strings.Contains(string(data), "signal 28 (SIGWINCH) received, stop accepting connections") {
		t.Errorf("error.log:\n%s", data)
	}
}

// TestUpgradeRevert: nginx's way back. After USR2 and WINCH, HUP makes
// the old process accept again (its configuration not reread); once the new
// one quits the old one has its pid file back. A second round without HUP:
// when the new binary exits, the old process accepts again by itself.
func TestUpgradeRevert(t *testing.T) {
	d := startUpgradeDaemon(t)
	ws := d.tunnel(t)
	for round, revertByHUP := range []bool{true, false} {
		newPID := d.upgrade(t)
		d.stopAccepting(t, newPID)
		if revertByHUP {
			syscall.Kill(d.oldPID, syscall.SIGHUP)
			waitLong(t, 10*time.Second, func() bool { return answeredBy(t, d.port, 20)[d.oldPID] }, "the old process to accept again after HUP")
		}
		syscall.Kill(newPID, syscall.SIGQUIT)
		waitLong(t, 10*time.Second, func() bool { return !alive(newPID) }, "the new process to exit")
		waitLong(t, 10*time.Second, func() bool { return readPID(d.pidFile) == d.oldPID }, "the old process to have its pid file back")
		if !onlyBy(t, d.port, 10, d.oldPID) {
			t.Fatalf("round %d: the old process does not answer alone after the new one left", round)
		}
		if fileExists(d.pidFile + ".oldbin") {
			t.Errorf("round %d: nginx.pid.oldbin left", round)
		}
		for i := 0; i < 3; i++ {
			if err := upgradeProbe(d.url); err != nil {
				t.Fatalf("round %d: handshake with the old process back: %v", round, err)
			}
		}
		wsEcho(t, ws, fmt.Sprintf("round %d", round))
	}
	if err := upgradeClose(ws); err != nil {
		t.Error(err)
	}
	if out, code := runBin(t, "-c", d.main, "-s", "quit"); code != 0 {
		t.Fatalf("-s quit: exit %d, %q", code, out)
	}
	waitLong(t, 10*time.Second, func() bool { return !alive(d.oldPID) }, "the old process to exit")
}

// TestUpgradeUnixSocket: a unix listener is handed over too; the old
// process leaving does not remove the socket file the new one serves on.
func TestUpgradeUnixSocket(t *testing.T) {
	s := startServer(t, "ngxsockify", ServerOptions{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    listen unix:{{DIR}}/http.sock;
    location / { return 200 "$pid\n"; }
}`})
	sock := filepath.Join(s.Dir, "http.sock")
	get := func() string {
		c, err := net.DialTimeout("unix", sock, 2*time.Second)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(c)
		_, body, _ := strings.Cut(string(b), "\r\n\r\n")
		return strings.TrimSpace(body)
	}
	oldPID := s.cmd.Process.Pid
	if got := get(); got != strconv.Itoa(oldPID) {
		t.Fatalf("GET over the unix socket: %q", got)
	}
	pidFile := filepath.Join(s.Dir, "nginx.pid")
	s.Signal(syscall.SIGUSR2)
	var newPID int
	waitLong(t, 20*time.Second, func() bool {
		newPID = readPID(pidFile)
		return newPID != 0 && newPID != oldPID && holdsSocket(newPID, listenInodes(s.Port))
	}, "the new binary")
	syscall.Kill(oldPID, syscall.SIGQUIT)
	waitLong(t, 10*time.Second, func() bool { return !alive(oldPID) }, "the old process to exit")
	for i := 0; i < 3; i++ {
		if got := get(); got != strconv.Itoa(newPID) {
			t.Fatalf("GET over the unix socket after the old one left: %q, want the new pid %d", got, newPID)
		}
	}
	s.Stop()
}
