package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy"
)

// stopGrace bounds a fast stop (SIGTERM, SIGINT): tunnels get a close
// frame (1001) and this long to answer it.
const stopGrace = time.Second

// oldPIDSuffix is appended to the pid file's name while a new binary runs
// (nginx's NGX_OLDPID_EXT).
const oldPIDSuffix = ".oldbin"

// process is the serving process and what its signals act on, as nginx's
// master process cycle: reload (HUP), reopen (USR1), binary upgrade (USR2),
// stop accepting (WINCH), graceful quit (QUIT), fast stop (TERM, INT).
type process struct {
	srv     *proxy.Server
	cfg     *nginxconf.Config // in effect
	load    func() (*nginxconf.Config, error)
	elog    *proxy.ErrorLog
	pidFile string   // written at start ("" when none)
	args    []string // the command line, for a new binary
	// daemonized: started by `daemon on`, or by an old binary; SIGWINCH
	// is ignored otherwise, as nginx does (terminals send it on resize).
	daemonized bool
	// oldParent is the pid of the old binary this process took its
	// sockets from, while it is our parent (USR2 is refused meanwhile).
	oldParent int

	newBinary     *os.Process // the new binary of an upgrade, while it runs
	newBinaryPath string
	newExited     chan *os.ProcessState // its end (nil: unknown)
	quitting      bool
	cancelQuit    context.CancelFunc
	quitDone      chan error
	// noAccepting: stopped accepting (SIGWINCH); held are the listening
	// sockets kept to resume, resumeWait ends the stop under way.
	noAccepting bool
	held        []int
	resumeWait  func()
	// sigs delivers the signals; pending holds those that came while
	// init_worker_by_lua ran (watch), for run to act on next.
	sigs    chan os.Signal
	pending []os.Signal
}

// serve runs until a stop signal, handling reload and reopen like nginx.
// emerg reports a startup failure (stderr and the error log). child is true
// in the background process of `daemon on`: it reports readiness once the
// pid file is written.
func serve(srv *proxy.Server, cfg *nginxconf.Config, load func() (*nginxconf.Config, error), emerg func(error) int, child bool, args []string) int {
	// Catch signals before the pid file tells anyone where to send them.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, sigUSR1, sigUSR2, sigWINCH)
	inheritedFrom, inheritErr := proxy.InheritListeners()
	defer proxy.ReleaseInherited() // the ones no listen took, or all on a failure
	// The sockets are bound now, as root where the process is, and served
	// only once root is given up (the user directive).
	if err := srv.OpenListeners(); err != nil {
		srv.Close()
		return emerg(err)
	}
	p := &process{
		srv: srv, cfg: cfg, load: load, elog: srv.ErrorLog(), pidFile: cfg.PID, args: args,
		daemonized: child || inheritedFrom != "",
		newExited:  make(chan *os.ProcessState, 1),
		quitDone:   make(chan error, 1),
		sigs:       sigs,
	}
	if inheritedFrom != "" {
		p.oldParent = os.Getppid()
		p.elog.Logf(ngxlog.Notice, 0, "using inherited sockets from \"%s\"", inheritedFrom)
	}
	if inheritErr != nil {
		p.elog.Logf(ngxlog.Emerg, 0, "%v", inheritErr)
	}
	if p.pidFile != "" {
		if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			srv.Close()
			return emerg(fmt.Errorf("open() \"%s\" failed (%v)", p.pidFile, errors.Unwrap(err)))
		}
	}
	if child {
		daemonStderr(cfg)
	}
	u, err := dropPrivileges(srv, cfg, p.pidFile)
	if err == nil {
		if child {
			// nginx's foreground process returns before its workers start
			daemonReady()
		}
		// what a worker runs first (init_worker_by_lua), as the user
		// directive's user, before the listeners accept (their sockets are
		// bound and queue connections meanwhile)
		if stop := p.watch(srv.StartWorker); stop != nil {
			// Nothing was served yet; srv.Close would wait for the
			// hook's Lua state: the exit closes the sockets.
			p.elog.Logf(ngxlog.Notice, 0, "signal %d received, exiting", stop)
			p.removePID()
			return 0
		}
		err = srv.Listen() // takes the sockets opened above
	}
	if err != nil {
		srv.Close()
		p.removePID()
		return emerg(err)
	}
	proxy.ReleaseInherited()
	notifyReady(inheritedFrom != "")
	p.elog.Logf(ngxlog.Notice, 0, "ngxsockify/%s started, listening on %v", Version, srv.Addrs())
	if u != nil {
		p.elog.Logf(ngxlog.Notice, 0, "serving as user %s", u)
	}
	return p.run()
}

// watch runs f, which may run init_worker_by_lua (a long os.execute, a
// socket with no timeout), while taking signals: a fast stop (TERM, INT)
// is returned at once, without waiting for f, as nginx's master kills a
// worker that does not exit; the other signals go to p.pending for run.
func (p *process) watch(f func()) (stop os.Signal) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	for {
		select {
		case <-done:
			return nil
		case sig := <-p.sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				return sig
			}
			p.pending = append(p.pending, sig)
		}
	}
}

func (p *process) run() int {
	for {
		if len(p.pending) > 0 {
			sig := p.pending[0]
			p.pending = p.pending[1:]
			if p.signal(sig.(syscall.Signal)) {
				p.removePID()
				return 0
			}
			continue
		}
		select {
		case sig := <-p.sigs:
			if p.signal(sig.(syscall.Signal)) {
				p.removePID()
				return 0
			}
		case state := <-p.newExited:
			p.newBinaryExited(state)
		case <-p.quitDone: // Quit logged; the log files are closed now
			p.removePID()
			return 0
		}
	}
}

// signal acts on sig and reports whether the process is to exit now.
func (p *process) signal(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGHUP:
		switch {
		case p.quitting:
			p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGHUP) received, ignoring: shutting down", sig)
		case p.noAccepting && p.newBinary != nil:
			// nginx: back to the old binary, its configuration not reread
			p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGHUP) received, accepting connections again", sig)
			p.resume()
		default:
			if stop := p.reload(); stop != nil {
				return p.signal(stop.(syscall.Signal))
			}
		}
	case sigUSR1:
		p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGUSR1) received, reopening logs", sig)
		if err := p.srv.Reopen(); err != nil {
			p.elog.Logf(ngxlog.Alert, 0, "%v", err)
		}
	case sigUSR2:
		p.changeBinary()
	case sigWINCH:
		if !p.daemonized {
			p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGWINCH) received", sig)
			return false
		}
		p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGWINCH) received, stop accepting connections", sig)
		if !p.noAccepting && !p.quitting {
			p.stopAccepting()
		}
	case syscall.SIGQUIT:
		if p.quitting {
			return false
		}
		p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGQUIT) received, shutting down gracefully", sig)
		notifyStopping()
		p.quitting = true
		ctx, cancel := context.WithCancel(context.Background())
		if t := p.cfg.WorkerShutdownTimeout; t > 0 {
			ctx, cancel = context.WithTimeout(context.Background(), t)
		}
		p.cancelQuit = cancel
		go func() { p.quitDone <- p.srv.Quit(ctx) }()
		if n := p.srv.Tunnels(); n > 0 {
			p.elog.Logf(ngxlog.Notice, 0, "gracefully shutting down, %d tunnels stay open until they end", n)
		}
	default: // SIGTERM, SIGINT
		p.elog.Logf(ngxlog.Notice, 0, "signal %d received, exiting", sig)
		notifyStopping()
		if p.quitting {
			p.cancelQuit() // Quit closes what is left now
			<-p.quitDone
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		p.srv.Shutdown(ctx)
		cancel()
		return true
	}
	return false
}

// reload rereads the configuration and swaps it in. A fast stop while the
// new configuration's init_worker_by_lua runs is returned, for the caller
// to act on at once (the reload is left unfinished).
func (p *process) reload() (stop os.Signal) {
	p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGHUP) received, reconfiguring", syscall.SIGHUP)
	notifyReloading()
	defer notifyReady(false)
	next, err := p.load()
	if err == nil {
		var rerr error
		if stop := p.watch(func() { rerr = p.srv.Reload(next) }); stop != nil {
			return stop
		}
		err = rerr
	}
	p.srv.CountReload(err)
	if err != nil {
		p.elog.Logf(ngxlog.Emerg, 0, "%v", err)
		p.elog.Logf(ngxlog.Notice, 0, "reconfiguration failed, the old configuration stays in effect")
		return nil
	}
	for _, w := range next.Warnings {
		level := ngxlog.Warn
		if w.Alert {
			level = ngxlog.Alert
		}
		p.elog.Logf(level, 0, "%s", w.String())
	}
	if next.PID != p.pidFile && next.PID != "" {
		os.WriteFile(next.PID, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	p.cfg = next
	p.elog = p.srv.ErrorLog()
	p.elog.Logf(ngxlog.Notice, 0, "reconfiguring done")
	return nil
}

// changeBinary is nginx's binary upgrade (SIGUSR2): the pid file becomes
// <pid>.oldbin and this binary starts again with the same arguments and the
// listening sockets in the NGINX environment variable; both serve until
// the old one is told to stop accepting (WINCH) or to quit.
func (p *process) changeBinary() {
	sig := int(sigUSR2)
	if p.newBinary != nil || p.quitting || (p.oldParent != 0 && os.Getppid() == p.oldParent) {
		p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGUSR2) received, ignoring", sig)
		p.elog.Logf(ngxlog.Crit, 0, "the changing binary signal is ignored: you should shutdown or terminate before either old or new binary's process")
		return
	}
	p.oldParent = 0
	p.elog.Logf(ngxlog.Notice, 0, "signal %d (SIGUSR2) received, changing binary", sig)
	self, err := os.Executable()
	if err != nil {
		p.elog.Logf(ngxlog.Alert, 0, "cannot find this binary for the new process: %v", err)
		return
	}
	fds, err := p.srv.ListenerFDs()
	if err != nil {
		p.elog.Logf(ngxlog.Alert, 0, "%v", err)
		return
	}
	defer closeFDs(fds)
	if p.pidFile != "" {
		if err := os.Rename(p.pidFile, p.pidFile+oldPIDSuffix); err != nil {
			p.elog.Logf(ngxlog.Alert, 0, "rename %s to %s failed before executing new binary process \"%s\" (%v)",
				p.pidFile, p.pidFile+oldPIDSuffix, self, errors.Unwrap(err))
			return
		}
	}
	var inherit strings.Builder
	for i := range fds {
		fmt.Fprintf(&inherit, "%d;", 3+i) // after stdin, stdout, stderr
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, proxy.InheritEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, proxy.InheritEnv+"="+inherit.String())
	proc, err := startBinary(self, p.args, env, fds)
	if err != nil {
		p.elog.Logf(ngxlog.Alert, 0, "execve() failed while executing new binary process \"%s\" (%v)", self, err)
		p.pidBack(self)
		return
	}
	p.elog.Logf(ngxlog.Notice, 0, "start new binary process %d", proc.Pid)
	p.newBinary, p.newBinaryPath = proc, self
	go func() {
		state, err := proc.Wait()
		if err == nil {
			p.newExited <- state
		} else {
			p.newExited <- nil
		}
	}()
}

// newBinaryExited: the new binary of an upgrade ended (it may have failed
// to start); the pid file is ours again, as in nginx.
func (p *process) newBinaryExited(state *os.ProcessState) {
	if state != nil {
		p.elog.Logf(ngxlog.Notice, 0, "new binary process %d exited with code %d", p.newBinary.Pid, state.ExitCode())
	}
	p.pidBack(p.newBinaryPath)
	p.newBinary = nil
	if p.noAccepting {
		p.resume()
	}
}

// stopAccepting is SIGWINCH: the listeners close (their duplicates are
// kept for resume) and the requests under way finish; tunnels run on.
func (p *process) stopAccepting() {
	fds, err := p.srv.ListenerFDs()
	if err != nil {
		p.elog.Logf(ngxlog.Alert, 0, "%v", err)
		return
	}
	p.srv.CloseListeners() // the new binary alone accepts from now on
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.srv.StopAccepting(ctx)
	}()
	p.noAccepting, p.held = true, fds
	p.resumeWait = func() { cancel(); <-done }
}

// resume accepts connections again on the sockets kept at SIGWINCH.
func (p *process) resume() {
	p.resumeWait()
	err := p.srv.Resume(p.held)
	p.noAccepting, p.held, p.resumeWait = false, nil, nil
	if err != nil {
		p.elog.Logf(ngxlog.Alert, 0, "cannot accept connections again: %v", err)
		return
	}
	p.elog.Logf(ngxlog.Notice, 0, "accepting connections again on %v", p.srv.Addrs())
}

// pidBack renames <pid>.oldbin back to the pid file.
func (p *process) pidBack(self string) {
	if p.pidFile == "" {
		return
	}
	if err := os.Rename(p.pidFile+oldPIDSuffix, p.pidFile); err != nil {
		p.elog.Logf(ngxlog.Alert, 0, "rename() %s back to %s failed after the new binary process \"%s\" exited (%v)",
			p.pidFile+oldPIDSuffix, p.pidFile, self, errors.Unwrap(err))
	}
}

// removePID deletes our pid file at exit: <pid>.oldbin while a new binary
// runs, as nginx's ngx_delete_pidfile. After the user directive dropped
// root, the file's directory may not let us: the file is emptied then, so
// that no stale pid stays in it.
func (p *process) removePID() {
	if p.pidFile == "" {
		return
	}
	name := p.pidFile
	if p.newBinary != nil {
		name += oldPIDSuffix
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		os.Truncate(name, 0)
	}
}
