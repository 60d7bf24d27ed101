package proxy

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"

	"ngxsockify/nginxconf/vars"
)

// statusModule is nginx's stub_status module and ngxsockify's
// prometheus_metrics (metrics.go): content handlers answering with the
// process's counters.
var statusModule = module{
	name: "status",
	provision: func(_ *Server, st *state) error {
		for _, lc := range st.cfg.HTTP.Confs {
			rt := &st.confs[lc.ID]
			if rt.content != nil {
				continue
			}
			switch {
			case lc.StubStatus:
				rt.content = stubStatusContent
			case lc.PrometheusMetrics:
				rt.content = prometheusContent
			}
		}
		return nil
	},
}

// connStats are nginx's stub_status counters (ngx_stat_*) of one Server,
// over its whole life (reloads keep them, as nginx's shared counters
// survive its reloads):
//
//   - accepts, handled: client connections accepted (every one is handled:
//     there is no worker_connections to run out of);
//   - requests: client requests (not subrequests), from their first byte,
//     so also the ones that never complete their header;
//   - active: client connections open, including the ones a tunnel holds;
//   - reading: connections reading a request's header (from its first byte
//     until the request starts);
//   - writing: requests being processed, and tunnels until they end;
//   - waiting: active - reading - writing (keep-alive connections between
//     requests).
//
// They are atomics. The connection layer reports to them: listener wraps
// accepted connections (a request's first byte starts reading), connState
// follows net/http's connection states, and ServeHTTP calls requestStart
// and requestEnd.
type connStats struct {
	accepts, requests        atomic.Int64
	active, reading, writing atomic.Int64
	// live are the connections not closed nor hijacked, linked through
	// them (mu guards the list and their born), for a reload's
	// worker_shutdown_timeout (closeOld); cur is the server's state
	mu   sync.Mutex
	live *statConn
	cur  *atomic.Pointer[state]
}

// connStat is one connection's part in the counters.
type connStat struct {
	reading   atomic.Bool // counted in reading
	inRequest atomic.Bool // a request is being processed: reads are its body's
	hijacked  atomic.Bool // the handler took the connection over
}

// listener wraps ln's connections in statConns.
func (cs *connStats) listener(ln net.Listener) net.Listener { return statListener{ln, cs} }

type statListener struct {
	net.Listener
	cs *connStats
}

func (l statListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &statConn{Conn: c, cs: l.cs}, nil
}

// statConn is an accepted connection: its first bytes between requests
// start a request, as nginx counts them (reading, requests). After a
// hijack the relay reaches the socket through NetConn and SyscallConn.
type statConn struct {
	net.Conn
	cs  *connStats
	st  connStat
	ctx connCtx // its requests' (Server.connContext)
	// prev and next link it in cs.live; born is the state in effect when
	// it was accepted
	prev, next *statConn
	listed     bool
	born       *state
}

func (c *statConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.st.inRequest.Load() && c.st.reading.CompareAndSwap(false, true) {
		c.cs.requests.Add(1)
		c.cs.reading.Add(1)
	}
	return n, err
}

// NetConn returns the socket.
func (c *statConn) NetConn() net.Conn { return c.Conn }

// SyscallConn lets the relay use the socket directly after a hijack.
func (c *statConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// CloseWrite half-closes the socket when it can.
func (c *statConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// statConnOf finds the statConn under c (through TLS and other wrappers).
func statConnOf(c net.Conn) *statConn {
	for {
		switch x := c.(type) {
		case *statConn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

// statOf finds the connStat under c.
func statOf(c net.Conn) *connStat {
	if sc := statConnOf(c); sc != nil {
		return &sc.st
	}
	return nil
}

// connState follows c through net/http's connection states.
func (cs *connStats) connState(c net.Conn, state http.ConnState) {
	st := statOf(c)
	if st == nil {
		return
	}
	switch state {
	case http.StateNew:
		cs.accepts.Add(1)
		cs.active.Add(1)
		cs.list(statConnOf(c))
	case http.StateIdle:
		st.inRequest.Store(false)
		cs.stopReading(st)
	case http.StateHijacked:
		// The request that hijacked it (requestEnd) or its tunnel
		// (tunnelEnded) releases the connection.
		st.hijacked.Store(true)
		cs.stopReading(st)
		cs.unlist(statConnOf(c))
	case http.StateClosed:
		cs.stopReading(st)
		cs.active.Add(-1)
		cs.unlist(statConnOf(c))
	}
}

// list adds sc to the live connections.
func (cs *connStats) list(sc *statConn) {
	if sc == nil {
		return
	}
	cs.mu.Lock()
	sc.prev, sc.next, sc.listed = nil, cs.live, true
	if cs.cur != nil {
		sc.born = cs.cur.Load()
	}
	if cs.live != nil {
		cs.live.prev = sc
	}
	cs.live = sc
	cs.mu.Unlock()
}

// unlist takes sc out of the live connections.
func (cs *connStats) unlist(sc *statConn) {
	if sc == nil {
		return
	}
	cs.mu.Lock()
	if sc.listed {
		if sc.prev != nil {
			sc.prev.next = sc.next
		} else {
			cs.live = sc.next
		}
		if sc.next != nil {
			sc.next.prev = sc.prev
		}
		sc.prev, sc.next, sc.listed = nil, nil, false
	}
	cs.mu.Unlock()
}

// closeOld closes the connections that came under the configuration old
// and are still open (not hijacked: tunnels are not closed here): what
// an old nginx worker does when worker_shutdown_timeout ends after a
// reload.
func (cs *connStats) closeOld(old *state) {
	cs.mu.Lock()
	var doomed []net.Conn
	for sc := cs.live; sc != nil; sc = sc.next {
		if sc.born == old {
			doomed = append(doomed, sc.Conn)
		}
	}
	cs.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

func (cs *connStats) stopReading(st *connStat) {
	if st.reading.CompareAndSwap(true, false) {
		cs.reading.Add(-1)
	}
}

// requestStart moves a request whose header was read from reading to
// writing, on its connection's connStat (nil when the connection is not
// counted through a statConn: the request is counted then). It returns st.
func (cs *connStats) requestStart(st *connStat) *connStat {
	if st != nil {
		st.inRequest.Store(true)
		if st.reading.CompareAndSwap(true, false) {
			cs.reading.Add(-1)
		} else {
			// No read started it: its bytes came with an earlier
			// request's (pipelined), and nginx counts it all the same.
			cs.requests.Add(1)
		}
	} else {
		cs.requests.Add(1)
	}
	cs.writing.Add(1)
	return st
}

// requestEnd ends what requestStart counted, unless a tunnel took the
// request over (tunnelEnded then does it); a connection the request
// hijacked and closed (return 444, a handshake failing after the hijack)
// is no longer active.
func (s *Server) requestEnd(rq *request, st *connStat) {
	if rq.hijacked {
		return
	}
	s.stats.writing.Add(-1)
	if st != nil && st.hijacked.Load() {
		s.stats.active.Add(-1)
	}
	s.metrics.request(rq.v.Status)
}

// tunnelEnded releases the request and the connection of a tunnel.
func (cs *connStats) tunnelEnded() {
	cs.writing.Add(-1)
	cs.active.Add(-1)
}

// ConnCounts implements vars.ConnCounter ($connections_*).
func (cs *connStats) ConnCounts() (active, reading, writing, waiting int64) {
	active, reading, writing = cs.active.Load(), cs.reading.Load(), cs.writing.Load()
	// The counters are read one by one while connections move: keep the
	// sum consistent.
	active = max(active, 0)
	reading = min(max(reading, 0), active)
	writing = min(max(writing, 0), active-reading)
	return active, reading, writing, active - reading - writing
}

var _ vars.ConnCounter = (*connStats)(nil)

// stubStatusContent answers with nginx's stub_status page: GET and HEAD
// only (405 otherwise), text/plain, nginx's exact layout including the
// spaces before the line ends.
func stubStatusContent(rq *request) {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.finalize(http.StatusMethodNotAllowed)
		return
	}
	cs := &rq.s.stats
	active, reading, writing, waiting := cs.ConnCounts()
	accepts := cs.accepts.Load()
	body := fmt.Sprintf("Active connections: %d \nserver accepts handled requests\n %d %d %d \n"+
		"Reading: %d Writing: %d Waiting: %d \n",
		active, accepts, accepts, cs.requests.Load(), reading, writing, waiting)
	rq.send(http.StatusOK, "text/plain", []byte(body))
}
