package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"ngxsockify/internal/slab"
	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// limitConnModule is nginx's ngx_http_limit_conn_module: at most N
// requests at once per key of each zone, counted in the pre-access phase
// (after limit_req) and released when the request ends. A websockify
// tunnel is a request that lasts as long as the tunnel: it holds its
// count until the tunnel closes, so limit_conn bounds the tunnels per
// client.
var limitConnModule = module{
	name: "limit_conn",
	register: func(e *engine) {
		e.add(phasePreAccess, limitConn)
	},
}

// connZone is a limit_conn_zone's counts, one node per key with a request
// in progress, in the zone's memory bound.
type connZone struct {
	mu    sync.Mutex
	nodes map[string]*connNode
	slab  *slab.Pool
	// released, made for a request that waits (acquire), is closed when a
	// count is given back; nil while nobody waits
	released chan struct{}
}

type connNode struct {
	conn  int
	chunk slab.Chunk
	// holders are the requests counted, each with its gone (see
	// connHold); a request's counts in other zones hold there
	holders map[*connHold]struct{}
}

// connHold is one request's count of a key. gone reports whether its
// client has closed the connection while the request waits on something
// else (http1's Gone): the request is about to end and give the count back.
// While soon is set, closed answers instead: the request watches its
// client within a few milliseconds (proxy_pass waiting for the head), so a
// client already gone will end it. mu keeps a check from running while the
// request lets go of its connection (stopWatching).
type connHold struct {
	mu     sync.Mutex
	gone   func() bool
	closed func() bool
	soon   atomic.Bool
}

// isGone is gone's (or closed's) answer; false once stopWatching ran.
func (h *connHold) isGone() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone == nil {
		return false
	}
	if h.soon.Load() && h.closed != nil {
		return h.closed()
	}
	return h.gone()
}

// watchSoon sets whether the request holding h will notice its client's
// close within a few milliseconds (see connHold); h may be nil.
func (h *connHold) watchSoon(on bool) {
	if h != nil {
		h.soon.Store(on)
	}
}

// stopWatching ends the checks of the client's connection: a request that
// became a tunnel lets go of its connection's objects (http1's Detach),
// and its count is given back when the tunnel ends.
func (h *connHold) stopWatching() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.gone = nil
	h.mu.Unlock()
}

func newConnZone(z *nginxconf.LimitZone) *connZone {
	cz := &connZone{nodes: map[string]*connNode{}, slab: slab.New(z.Size)}
	// the zone's header (class 64) and " in limit_conn_zone "name"", as
	// nginx's init_zone allocates them
	cz.slab.Alloc(64)
	cz.slab.Alloc(23 + len(z.Name))
	return cz
}

// acquire counts h as one more request for key; full is set when the key
// already has limit, noMemory when a new key finds no room in the zone.
// A full key whose holders include one whose client is gone gives wait,
// closed when a count is given back: the caller tries again then.
func (z *connZone) acquire(key string, limit int, h *connHold) (full, noMemory bool, wait <-chan struct{}) {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := z.nodes[key]
	if n == nil {
		chunk, ok := z.slab.Alloc(connNodeHeader + len(key))
		if !ok {
			return false, true, nil
		}
		z.nodes[key] = &connNode{conn: 1, chunk: chunk, holders: map[*connHold]struct{}{h: {}}}
		return false, false, nil
	}
	if n.conn >= limit {
		for o := range n.holders {
			if o.isGone() {
				if z.released == nil {
					z.released = make(chan struct{})
				}
				return true, false, z.released
			}
		}
		return true, false, nil
	}
	n.conn++
	n.holders[h] = struct{}{}
	return false, false, nil
}

// release gives back h's count of key; the last one frees its node.
func (z *connZone) release(key string, h *connHold) {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := z.nodes[key]
	if n == nil {
		return
	}
	delete(n.holders, h)
	if n.conn--; n.conn == 0 {
		delete(z.nodes, key)
		z.slab.Free(n.chunk)
	}
	if z.released != nil {
		close(z.released)
		z.released = nil
	}
}

// goneWait bounds how long a request waits for a gone holder to end
// before it is refused after all.
const goneWait = time.Second

// limitConn counts the request in each zone of the level's limit_conn
// list whose key is not empty. A key at its limit refuses the request with
// limit_conn_status (and gives back what the earlier zones counted); the
// counts are released by the request's cleanup (for a tunnel, when it
// ends).
func limitConn(rq *request) rc {
	limits := rq.conf.LimitConn
	if len(limits) == 0 {
		return rcDeclined
	}
	if rq.subrequest {
		defer rq.limitTurn()()
	}
	mv := rq.v.MainRequest() // one verdict per main request, subrequests included
	if mv.LimitConnStatus != "" {
		return rcDeclined
	}
	zones := rq.st.confs[rq.conf.ID].limits.conn
	conf := rq.conf
	var taken []func()
	hold := &connHold{}
	if g, ok := rq.w.w.(interface {
		Gone() bool
		Closed() bool
	}); ok && !rq.subrequest {
		hold.gone, hold.closed = g.Gone, g.Closed
	}
	for i, l := range limits {
		key, ok := rq.limitKey(l.Zone, 255)
		if !ok {
			continue
		}
		mv.LimitConnStatus = limitPassed
		z := zones[i]
		full, noMemory, wait := z.acquire(key, l.Conn, hold)
		for deadline := time.Now().Add(goneWait); wait != nil && time.Now().Before(deadline); {
			select {
			case <-wait:
			case <-time.After(time.Until(deadline)):
			}
			full, noMemory, wait = z.acquire(key, l.Conn, hold)
		}
		if full || noMemory {
			if full {
				dry := ""
				if conf.LimitConnDryRun {
					dry = ", dry run,"
				}
				rq.logf(conf.LimitConnLogLevel, `limiting connections%s by zone "%s"`, dry, l.Zone.Name)
			} else if el := rq.errorLog(); el != nil && el.enabled(ngxlog.Crit) {
				el.Logf(ngxlog.Crit, 0, `ngx_slab_alloc() failed: no memory in limit_conn_zone "%s"`, l.Zone.Name)
			}
			for _, f := range taken {
				f()
			}
			if conf.LimitConnDryRun {
				mv.LimitConnStatus = limitRejectedDryRun
				return rcDeclined
			}
			mv.LimitConnStatus = limitRejected
			rq.finalize(conf.LimitConnStatus)
			return rcDone
		}
		taken = append(taken, func() { z.release(key, hold) })
	}
	if sc, ok := rq.w.w.(interface{ StreamClosed() <-chan bool }); ok && len(taken) > 0 && !rq.subrequest {
		// HTTP/2: nginx's request lasts until its stream has sent the
		// response (flow control may hold it long after the handler is
		// done) or is reset, and so does its count
		taken = h2Release(sc.StreamClosed(), hold, taken, func() bool { return rq.bodyQueued })
	}
	rq.cleanups = append(rq.cleanups, taken...)
	if len(taken) > 0 {
		rq.connHold = hold
	}
	return rcDeclined
}

// h2Release turns the releases of an HTTP/2 request's counts into one
// cleanup that gives them back once closed says the stream is closed; the
// hold reads as gone from then on, so that a request refused meanwhile
// waits for the release (as for a client gone on HTTP/1.x). A response
// nginx makes whole in memory (return's text: queued reports it) ends its
// request at once, as nginx's does; one read from a file or a backend
// lasts until it is sent.
func h2Release(closed <-chan bool, hold *connHold, taken []func(), queued func() bool) []func() {
	var done atomic.Bool
	hold.mu.Lock()
	hold.gone = done.Load
	hold.mu.Unlock()
	return []func(){func() {
		if queued() {
			done.Store(true)
			for _, f := range taken {
				f()
			}
			return
		}
		go func() {
			<-closed
			done.Store(true)
			for _, f := range taken {
				f()
			}
		}()
	}}
}
