package luahooks

import (
	"bufio"
	"net"
	"sync"
	"time"

	"ngxsockify/netpeek"
	"ngxsockify/ngxlog"
)

// The cosocket connection pools (setkeepalive, connect's pool, pool_size
// and backlog options), as lua-nginx-module 0.10.23 keeps them per worker:
// one pool per key ("host:port", "unix:path" or the pool option), made by
// the first connect that gives pool_size or backlog, or else by the first
// setkeepalive. A pool counts its connections: the idle ones, the
// connected sockets that came through it, and the connects queued on it.
// With a backlog, a connect that finds size connections waits (up to
// backlog of them, for at most the connect timeout) until one is closed or
// put back; without one, connects are not limited. A pool whose count
// drops to zero is freed.

// socketPool holds the runtime's pools.
type socketPool struct {
	mu     sync.Mutex
	pools  map[string]*connPool
	closed bool
}

// connPool is one key's pool.
type connPool struct {
	key         string
	size        int
	backlog     int // -1: connects are not queued
	connections int
	idle        []*idleConn // the most recently pooled last
	waiting     []chan struct{}
}

type idleConn struct {
	conn   net.Conn
	br     *bufio.Reader
	wr     *waitReader // br's source
	reused int
	timer  *time.Timer
}

// debugf logs a debug line of the pool (the request's error log).
type debugf func(format string, args ...any)

// lookup returns key's pool; when there is none and size > 0 it makes one.
func (p *socketPool) lookup(key string, size, backlog int, logf debugf) *connPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cp := p.pools[key]; cp != nil || size <= 0 {
		return cp
	}
	logf("lua tcp socket connection pool size: %d, backlog: %d", size, backlog)
	logf("lua tcp socket keepalive create connection pool for key \"%s\"", key)
	if p.pools == nil {
		p.pools = map[string]*connPool{}
	}
	cp := &connPool{key: key, size: size, backlog: backlog}
	p.pools[key] = cp
	return cp
}

// takeIdle returns cp's most recently pooled live connection. One the
// peer closed (or sent unasked bytes to) while idle is dropped: a peek at
// the socket that does not wait tells.
func (p *socketPool) takeIdle(cp *connPool, logf debugf) (net.Conn, *bufio.Reader, *waitReader, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(cp.idle) > 0 {
		ic := cp.idle[len(cp.idle)-1]
		cp.idle = cp.idle[:len(cp.idle)-1]
		ic.timer.Stop()
		if ic.br.Buffered() == 0 && netpeek.Alive(ic.conn) {
			logf("lua tcp socket get keepalive peer: using connection %p, fd:%d", ic.conn, 0)
			return ic.conn, ic.br, ic.wr, ic.reused
		}
		ic.conn.Close()
		cp.connections--
		if len(cp.waiting) > 0 {
			p.settle(cp, logf) // its place goes to a queued connect
		}
	}
	return nil, nil, nil, 0
}

// admit counts a new connection of cp. With a backlog and size
// connections already, it queues the connect (a channel closed when it
// may go on), or refuses it past the backlog; a resumed connect is not
// queued again.
func (p *socketPool) admit(cp *connPool, resuming bool, logf debugf) (wait chan struct{}, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp.connections++
	if cp.backlog < 0 || resuming {
		return nil, ""
	}
	if cp.connections > cp.size+cp.backlog {
		cp.connections--
		return nil, "too many waiting connect operations"
	}
	if cp.connections > cp.size {
		logf("lua tcp socket queue connect operation for connection pool \"%s\", connections: %d", cp.key, cp.connections)
		ch := make(chan struct{})
		cp.waiting = append(cp.waiting, ch)
		return ch, ""
	}
	return nil, ""
}

// dequeue ends a queued connect: resumed (it counts no more: the connect
// is tried again) or, when it still waits, given up (timeout, killed).
// It reports whether it had been resumed.
func (p *socketPool) dequeue(cp *connPool, ch chan struct{}) (resumed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp.connections--
	for i, w := range cp.waiting {
		if w == ch {
			cp.waiting = append(cp.waiting[:i:i], cp.waiting[i+1:]...)
			return false
		}
	}
	return true
}

// release uncounts a connection of cp that was closed (or a connect that
// failed): the next queued connect goes on, and a pool with nothing left
// is freed.
func (p *socketPool) release(cp *connPool, logf debugf) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp.connections--
	p.settle(cp, logf)
}

// pass lets the next queued connect of cp go on (or frees cp when it is
// empty), after a connect gave up its place.
func (p *socketPool) pass(cp *connPool, logf debugf) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settle(cp, logf)
}

// settle frees an empty pool or resumes its first queued connect; p.mu is
// held.
func (p *socketPool) settle(cp *connPool, logf debugf) {
	if cp.connections <= 0 && len(cp.waiting) == 0 {
		cp.connections = 0
		if len(cp.idle) == 0 && p.pools[cp.key] == cp {
			logf("lua tcp socket keepalive: free connection pool for \"%s\"", cp.key)
			delete(p.pools, cp.key)
		}
		return
	}
	if len(cp.waiting) > 0 {
		close(cp.waiting[0])
		cp.waiting = cp.waiting[1:]
	}
}

// put pools an idle connection; counted says it already counts in cp (it
// came through cp). A full pool closes its least recently used one.
func (p *socketPool) put(cp *connPool, counted bool, c net.Conn, br *bufio.Reader, wr *waitReader, reused int, idle time.Duration, logf debugf) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return
	}
	if len(cp.idle) >= cp.size {
		cp.idle[0].timer.Stop()
		cp.idle[0].conn.Close()
		cp.idle = cp.idle[1:]
		if counted {
			cp.connections--
		}
	} else if !counted {
		cp.connections++
	}
	ic := &idleConn{conn: c, br: br, wr: wr, reused: reused}
	ic.timer = time.AfterFunc(idle, func() { p.expire(cp, ic) })
	cp.idle = append(cp.idle, ic)
	if len(cp.waiting) > 0 {
		p.settle(cp, logf)
	}
}

// expire closes an idle connection whose keepalive timeout passed.
func (p *socketPool) expire(cp *connPool, ic *idleConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range cp.idle {
		if x == ic {
			cp.idle = append(cp.idle[:i:i], cp.idle[i+1:]...)
			ic.conn.Close()
			cp.connections--
			p.settle(cp, func(string, ...any) {}) // the request that pooled it is gone
			return
		}
	}
}

// closeAll closes every idle connection (runtime close, reload).
func (p *socketPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cp := range p.pools {
		for _, ic := range cp.idle {
			ic.timer.Stop()
			ic.conn.Close()
		}
		cp.idle = nil
	}
	p.pools = nil
}

// poolDebug is the debug logger of the state's run.
func (st *state) poolDebug() debugf {
	return func(format string, args ...any) { st.logf(ngxlog.Debug, format, args...) }
}
