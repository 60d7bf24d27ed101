//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"ngxsockify/nginxconf"
)

// daemonEnv marks the background process that `daemon on` starts: the
// foreground process re-runs its own binary with the same arguments and
// daemonEnv=1 in the environment, and waits on a pipe (the child's fd 3)
// until the child listens and has written its pid file ("ok"), or fails.
// The child removes the variable from its environment at start.
const daemonEnv = "NGXSOCKIFY_DAEMON_CHILD"

// daemonSupported: daemon on detaches here; elsewhere it runs in the
// foreground (daemon_other.go).
const daemonSupported = true

// readyFD is the child's end of the readiness pipe.
const readyFD = 3

// daemonChild reports whether this process is the background child of
// `daemon on`, and forgets the marker so that Lua and anything the process
// starts do not see it.
func daemonChild() bool {
	if os.Getenv(daemonEnv) != "1" {
		return false
	}
	os.Unsetenv(daemonEnv)
	return true
}

// daemonize starts this binary again with args in a new session, in the
// background, and waits until it reports that it serves. It returns the exit
// code of the foreground process: 0 when the child serves, 1 when it failed
// (the child printed why to the inherited stderr).
func daemonize(args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "ngxsockify: [emerg] daemon: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "ngxsockify: [emerg] daemon: pipe: %v\n", err)
		return 1
	}
	defer r.Close()
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	// The child gets our stderr itself (a writer would need a copying
	// goroutine that ends with this process); stdin and stdout are
	// /dev/null, as nginx's.
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		fmt.Fprintf(stderr, "ngxsockify: [emerg] daemon: %v\n", err)
		return 1
	}
	msg, _ := io.ReadAll(r) // EOF when the child is ready or gone
	if strings.TrimSpace(string(msg)) == "ok" {
		cmd.Process.Release()
		return 0
	}
	// The child failed and printed why to the stderr it shares with us.
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return 1
	}
	fmt.Fprintf(stderr, "ngxsockify: [emerg] the background process ended before it was ready (%v)\n", err)
	return 1
}

// daemonReady tells the waiting foreground process that the child serves.
func daemonReady() {
	var st syscall.Stat_t
	if syscall.Fstat(readyFD, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
		f := os.NewFile(readyFD, "ready")
		f.WriteString("ok\n")
		f.Close()
	}
}

// daemonStderr points the child's stderr at the main error log file, as
// nginx does after it starts (ngx_log_redirect_stderr), so that a crash
// report lands there. stderr stays when an error_log target is stderr. It
// runs before the user directive drops root, which may not open the file.
func daemonStderr(cfg *nginxconf.Config) {
	files, toStderr := errorLogFiles(cfg)
	if toStderr || len(files) == 0 {
		return
	}
	path := files[0]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	syscall.Dup3(int(f.Fd()), 2, 0)
	f.Close()
}
