package proxy

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
)

// quitGrace is how long tunnels still open when a graceful quit gives up
// have to answer their close frame (1001), as a fast stop gives them.
const quitGrace = time.Second

// acceptedGrace is how long StopAccepting lets connections accepted just
// before it send their first request.
const acceptedGrace = 500 * time.Millisecond

// StopAccepting closes the listeners (CloseListeners), ends idle
// keep-alive connections and waits until the requests under way finish or
// ctx ends: what nginx's workers do on a graceful quit, and on SIGWINCH
// after an upgrade. Tunnels go on; the process keeps its state, logs and
// tunnel registry.
func (s *Server) StopAccepting(ctx context.Context) {
	s.CloseListeners()
	s.mu.Lock()
	servers := append([]*http1.Server(nil), s.servers...)
	s.mu.Unlock()
	// Shutdown drops, unanswered, a connection whose first request has
	// not arrived when it begins: the connections accepted just before
	// get acceptedGrace to send theirs, and are answered with
	// "Connection: close" as nginx's graceful quit answers; idle keep-alive
	// connections close now.
	for _, hs := range servers {
		hs.SetKeepAlivesEnabled(false)
	}
	s.h2GoAway(true)
	select {
	case <-time.After(acceptedGrace):
	case <-ctx.Done():
	}
	var wg sync.WaitGroup
	for _, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs.Shutdown(ctx)
		}()
	}
	wg.Wait()
}

// CloseListeners closes the listening sockets at once, with the
// duplicates the connection layer accepts on (websockify.Listener), so
// that no connection is accepted after it returns: one accepted later
// would be dropped unanswered when the connection layer shuts down.
func (s *Server) CloseListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.ls {
		l.ln.Close()
		if l.accepting != nil {
			l.accepting.Close()
		}
	}
}

// Quit is nginx's graceful quit (SIGQUIT): it stops accepting, lets the
// requests under way finish and the tunnels run until they end, then
// closes everything as Shutdown does. When ctx ends first
// (worker_shutdown_timeout), what is still open is closed then: tunnels
// get a close frame with 1001 and quitGrace to answer it. It returns
// ctx.Err() when it had to close something.
func (s *Server) Quit(ctx context.Context) error {
	s.StopAccepting(ctx)
	err := s.tunnels.Drain(ctx)
	if err != nil {
		s.ErrorLog().Logf(ngxlog.Notice, 0, "graceful shutdown ended (%v): closing %d tunnels", err, s.tunnels.Len())
	}
	grace, cancel := context.WithTimeout(context.Background(), quitGrace)
	defer cancel()
	s.shutdown(grace, true, "exit")
	return err
}

// Resume accepts connections again after StopAccepting (which must have
// returned), on fds: the ListenerFDs taken before it, which Resume closes.
// nginx's master does this after SIGWINCH when the new binary of an
// upgrade exits, or on SIGHUP (going back to the old binary).
func (s *Server) Resume(fds []int) error {
	for _, fd := range fds {
		adopt(fd, false) // the new binary may still serve on a unix socket's file
	}
	defer ReleaseInherited()
	s.mu.Lock()
	for k, l := range s.ls {
		l.ln.Close() // closed already; its file, if unix, stays (ListenerFDs)
		delete(s.ls, k)
	}
	s.mu.Unlock()
	return s.Listen()
}

// Tunnels returns the number of live tunnels.
func (s *Server) Tunnels() int { return s.tunnels.Len() }

// ChownLogs makes uid the owner of the log files open now (their group
// stays), as nginx's master does to the files it reopens for its workers
// (ngx_reopen_files), so that the process can still reopen them (SIGUSR1)
// and a new binary (SIGUSR2) can open them once it runs as uid.
func (s *Server) ChownLogs(uid int) error {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	for _, l := range s.logs.files {
		if !l.own {
			continue
		}
		if err := os.Chown(l.path, uid, -1); err != nil {
			return fmt.Errorf(`chown("%s", %d) failed (%v)`, l.path, uid, errnoError{unwrapErrno(err)})
		}
	}
	return nil
}
