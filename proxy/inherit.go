package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// InheritEnv is the environment variable that hands listening sockets to a
// new binary on an upgrade (SIGUSR2), as nginx's: their descriptor numbers,
// each followed by ';' ("3;4;"). nginx also accepts ':' as the separator.
const InheritEnv = "NGINX"

// inherited holds the listening sockets a binary upgrade handed to this
// process until Listen claims them.
var inherited struct {
	mu sync.Mutex
	ls []net.Listener
}

// InheritListeners takes the sockets InheritEnv names, removes the variable
// from the environment (Lua's os.getenv and the processes we start do not
// see it) and returns the variable's value ("" when there was none). A
// descriptor that is not a listening socket is skipped with an error that
// names it, as nginx's "invalid socket number", after the others are
// taken.
func InheritListeners() (string, error) {
	env, ok := os.LookupEnv(InheritEnv)
	if !ok {
		return "", nil
	}
	os.Unsetenv(InheritEnv)
	var bad []string
	for _, v := range strings.FieldsFunc(env, func(r rune) bool { return r == ';' || r == ':' }) {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 || adopt(fd, true) != nil {
			bad = append(bad, v)
		}
	}
	if len(bad) > 0 {
		return env, fmt.Errorf(`invalid socket number "%s" in %s environment variable, ignoring`, strings.Join(bad, ";"), InheritEnv)
	}
	return env, nil
}

// adopt puts the listening socket fd in the inherited pool; fd is closed
// either way. unlink: a unix socket's file is removed when the listener
// closes (not while another process serves on it).
func adopt(fd int, unlink bool) error {
	f := os.NewFile(uintptr(fd), "inherited socket "+strconv.Itoa(fd))
	ln, err := net.FileListener(f) // a dup
	f.Close()
	if err != nil {
		return err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(unlink)
	}
	putInherited(ln)
	return nil
}

// ReleaseInherited closes the inherited sockets no listen directive
// claimed (nginx closes the old cycle's unused listeners too).
func ReleaseInherited() {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for _, ln := range inherited.ls {
		ln.Close()
	}
	inherited.ls = nil
}

// takeInherited returns the inherited socket bound where b binds, or nil.
func takeInherited(b bindSpec) net.Listener {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for i, ln := range inherited.ls {
		if bindsAt(ln.Addr(), b) {
			inherited.ls = append(inherited.ls[:i], inherited.ls[i+1:]...)
			return ln
		}
	}
	return nil
}

// bindsAt reports whether a socket with local address a serves b.
func bindsAt(a net.Addr, b bindSpec) bool {
	switch a := a.(type) {
	case *net.UnixAddr:
		return b.network == "unix" && a.Name == b.addr
	case *net.TCPAddr:
		if b.network == "unix" {
			return false
		}
		want, err := net.ResolveTCPAddr(b.network, b.addr)
		if err != nil || want.Port != a.Port {
			return false
		}
		// 0.0.0.0 (tcp4) and [::] (tcp6) are different sockets.
		if (want.IP.To4() == nil) != (a.IP.To4() == nil) {
			return false
		}
		return want.IP.Equal(a.IP)
	}
	return false
}

// OpenListeners opens every socket the configuration binds, for Listen to
// take (as it takes inherited ones), so that the process can bind them as
// root and give root up (the user directive) before Listen starts serving
// on them. A socket already inherited is not bound again.
func (s *Server) OpenListeners() error {
	st := s.state.Load()
	keys := make([]string, 0, len(st.binds))
	for k := range st.binds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b := st.binds[k]
		if ln := takeInherited(b); ln != nil {
			putInherited(ln)
			continue
		}
		ln, err := bind(b)
		if err != nil {
			return err // ReleaseInherited closes the ones opened
		}
		putInherited(ln)
	}
	return nil
}

func putInherited(ln net.Listener) {
	inherited.mu.Lock()
	inherited.ls = append(inherited.ls, ln)
	inherited.mu.Unlock()
}

// openListener opens the socket of b for Listen: an inherited (or opened
// beforehand) one bound there, else a new one.
func (s *Server) openListener(b bindSpec) (net.Listener, error) {
	if ln := takeInherited(b); ln != nil {
		return ln, nil
	}
	return bind(b)
}

// bind opens a new socket for b. No TCP keepalive on accepted connections,
// as in nginx without `listen ... so_keepalive=on`.
func bind(b bindSpec) (net.Listener, error) {
	if b.network == "unix" {
		os.Remove(b.addr)
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), b.network, b.addr)
	if err != nil {
		err = fmt.Errorf("bind() to %s failed (%w)", b.addr, errors.Unwrap(err))
		if errors.Is(err, syscall.EACCES) && privilegedPort(b) {
			err = fmt.Errorf("%w: ports below 1024 need root or CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE; or setcap cap_net_bind_service=+ep on the binary); after the \"user\" directive dropped root, a reload cannot open them", err)
		}
		return nil, err
	}
	return ln, nil
}

func privilegedPort(b bindSpec) bool {
	if b.network == "unix" {
		return false
	}
	_, port, err := net.SplitHostPort(b.addr)
	n, _ := strconv.Atoi(port)
	return err == nil && n > 0 && n < 1024
}
