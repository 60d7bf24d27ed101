package proxy

import (
	"container/list"
	"fmt"
	"sync"
	"time"

	"ngxsockify/internal/slab"
	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// limitReqModule is nginx's ngx_http_limit_req_module: a leaky bucket per
// key of each zone, checked in the pre-access phase (after realip, before
// limit_conn, as nginx orders them), once per main request: internal
// redirects and subrequests keep the first verdict ($limit_req_status is
// set).
var limitReqModule = module{
	name:      "limit_req",
	provision: provisionLimits, // both modules' zones
	register: func(e *engine) {
		e.add(phasePreAccess, limitReq)
	},
}

// $limit_req_status values.
const (
	limitPassed         = "PASSED"
	limitDelayed        = "DELAYED"
	limitRejected       = "REJECTED"
	limitDelayedDryRun  = "DELAYED_DRY_RUN"
	limitRejectedDryRun = "REJECTED_DRY_RUN"
)

// reqZone is a limit_req_zone's states: one bucket per key, in least
// recently used order (front: most recent), in the zone's memory bound.
type reqZone struct {
	mu    sync.Mutex
	nodes map[string]*reqNode
	lru   *list.List // of *reqNode
	slab  *slab.Pool
}

// reqNode is one key's bucket (nginx's ngx_http_limit_req_node_t).
type reqNode struct {
	key    string
	last   int64 // msec of the last accounted request
	excess int64 // milli-requests above the rate
	// count is how many requests looked this node up and are not yet
	// accounted (a request with several limits holds each until the
	// last is decided); such a node is never evicted.
	count int
	elem  *list.Element
	chunk slab.Chunk
}

func newReqZone(z *nginxconf.LimitZone) *reqZone {
	rz := &reqZone{nodes: map[string]*reqNode{}, lru: list.New(), slab: slab.New(z.Size)}
	// what nginx's init_zone takes from the zone: its header (class 128)
	// and the " in limit_req zone "name"" log context
	rz.slab.Alloc(80)
	rz.slab.Alloc(21 + len(z.Name))
	return rz
}

// lookup results (nginx's NGX_OK, NGX_AGAIN, NGX_BUSY, NGX_ERROR).
type lookupResult int

const (
	lookupOK    lookupResult = iota // accounted (the last limit)
	lookupAgain                     // within burst, held for accounting
	lookupBusy                      // over burst: refuse
	lookupError                     // no memory for a new key
)

// elapsed is nginx's clamp of the time since last: a clock gone back a
// little counts as no time, far back as 1 ms.
func elapsed(now, last int64) int64 {
	ms := now - last
	switch {
	case ms < -60000:
		return 1
	case ms < 0:
		return 0
	}
	return ms
}

// lookup is ngx_http_limit_req_lookup: the key's excess after this
// request, leaked at the zone's rate since its last request. account is
// set for the request's last limit, which is accounted at once; earlier
// ones are held (count) until account runs. The rate (milli-requests per
// second) is the configuration's: a reload may change it and keep the
// states.
func (z *reqZone) lookup(key string, rate, burst int64, account bool, now int64) (lookupResult, int64, *reqNode) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if n := z.nodes[key]; n != nil {
		z.lru.MoveToFront(n.elem)
		ms := elapsed(now, n.last)
		excess := max(n.excess-rate*ms/1000+1000, 0)
		if excess > burst {
			return lookupBusy, excess, nil
		}
		if account {
			n.excess = excess
			if ms != 0 {
				n.last = now
			}
			return lookupOK, excess, nil
		}
		n.count++
		return lookupAgain, excess, n
	}
	z.expire(1, rate, now)
	size := reqNodeHeader + len(key)
	chunk, ok := z.slab.Alloc(size)
	if !ok {
		z.expire(0, rate, now)
		if chunk, ok = z.slab.Alloc(size); !ok {
			return lookupError, 0, nil
		}
	}
	n := &reqNode{key: key, last: now, chunk: chunk}
	n.elem = z.lru.PushFront(n)
	z.nodes[key] = n
	if account {
		return lookupOK, 0, nil
	}
	n.count = 1
	return lookupAgain, 0, n
}

// expire is ngx_http_limit_req_expire: with force 1 it drops at most two
// of the oldest states that have leaked out for a minute; with 0 it first
// drops the oldest state whatever it holds. A state a request still holds
// stops it.
func (z *reqZone) expire(force int, rate, now int64) {
	for n := force; n < 3; n++ {
		e := z.lru.Back()
		if e == nil {
			return
		}
		node := e.Value.(*reqNode)
		if node.count != 0 {
			return
		}
		if n != 0 {
			ms := now - node.last
			if ms < 0 {
				ms = -ms
			}
			if ms < 60000 || node.excess-rate*ms/1000 > 0 {
				return
			}
		}
		z.lru.Remove(e)
		delete(z.nodes, node.key)
		z.slab.Free(node.chunk)
	}
}

// settle is the accounting of a held node (ngx_http_limit_req_account's
// loop): its excess grows by this request now that every limit let it
// through.
func (z *reqZone) settle(n *reqNode, rate, now int64) int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	ms := elapsed(now, n.last)
	excess := max(n.excess-rate*ms/1000+1000, 0)
	if ms != 0 {
		n.last = now
	}
	n.excess = excess
	n.count--
	return excess
}

// release drops a held node's count when a later limit refused the
// request (ngx_http_limit_req_unlock).
func (z *reqZone) release(n *reqNode) {
	z.mu.Lock()
	n.count--
	z.mu.Unlock()
}

// heldReq is a limit whose node a request holds until it is accounted.
type heldReq struct {
	i    int
	node *reqNode
}

// limitReq checks the level's limit_req list in order. A key that is
// empty skips its limit. The first limit whose bucket overflows its burst
// refuses the request (limit_req_status), else the request is delayed by
// the longest delay its limits ask for, on a timer.
func limitReq(rq *request) rc {
	limits := rq.conf.LimitReq
	if len(limits) == 0 {
		return rcDeclined
	}
	if rq.subrequest {
		defer rq.limitTurn()()
	}
	mv := rq.v.MainRequest() // one verdict per main request, subrequests included
	if mv.LimitReqStatus != "" {
		return rcDeclined
	}
	zones := rq.st.confs[rq.conf.ID].limits.req
	now := nowMsec()
	var held []heldReq
	res := lookupResult(-1) // no limit applied: every key was empty
	var excess int64
	last := 0
	for i, l := range limits {
		key, ok := rq.limitKey(l.Zone, 65535)
		if !ok {
			continue
		}
		var n *reqNode
		res, excess, n = zones[i].lookup(key, l.Zone.Rate, l.Burst, i == len(limits)-1, now)
		last = i
		if n != nil {
			held = append(held, heldReq{i, n})
		}
		if res != lookupAgain {
			break
		}
	}
	conf := rq.conf
	switch res {
	case -1: // no verdict: $limit_req_status stays unset, as in nginx
		return rcDeclined
	case lookupBusy, lookupError:
		if res == lookupBusy {
			rq.logf(conf.LimitReqLogLevel, `limiting requests%s, excess: %s by zone "%s"`,
				dryRun(conf.LimitReqDryRun), milliString(excess), limits[last].Zone.Name)
		} else {
			if el := rq.errorLog(); el != nil && el.enabled(ngxlog.Alert) {
				el.Logf(ngxlog.Alert, 0, `could not allocate node in limit_req zone "%s"`, limits[last].Zone.Name)
			}
		}
		for _, h := range held {
			zones[h.i].release(h.node)
		}
		if conf.LimitReqDryRun {
			mv.LimitReqStatus = limitRejectedDryRun
			return rcDeclined
		}
		mv.LimitReqStatus = limitRejected
		rq.finalize(conf.LimitReqStatus)
		return rcDone
	case lookupAgain:
		excess = 0 // the last limits had empty keys
	}
	delay, excess, zone := limitReqAccount(limits, zones, held, excess, last, now)
	if delay == 0 {
		mv.LimitReqStatus = limitPassed
		return rcDeclined
	}
	level := conf.LimitReqLogLevel
	if level != ngxlog.Info {
		level++ // delays log one level below refusals
	}
	rq.logf(level, `delaying request%s, excess: %s, by zone "%s"`, dryRun(conf.LimitReqDryRun), milliString(excess), zone)
	if conf.LimitReqDryRun {
		mv.LimitReqStatus = limitDelayedDryRun
		return rcDeclined
	}
	mv.LimitReqStatus = limitDelayed
	// The request's goroutine waits on a timer, which holds no thread; a
	// client that goes away ends the wait (nginx's ngx_http_test_reading).
	t := time.NewTimer(time.Duration(delay) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return rcDeclined
	case <-rq.r.Context().Done():
		rq.v.Status = 499
		rq.closed = true
		return rcDone
	}
}

// limitReqAccount is ngx_http_limit_req_account: it settles the held
// nodes and returns the longest delay in ms any limit asks for, with that
// limit's excess and zone name. excess and last are the last lookup's.
// now is the lookups' time (nginx's cached ngx_current_msec).
func limitReqAccount(limits []nginxconf.LimitReq, zones []*reqZone, held []heldReq, excess int64, last int, now int64) (int64, int64, string) {
	var maxDelay int64
	zone := limits[last].Zone.Name
	if l := limits[last]; excess > l.Delay {
		maxDelay = (excess - l.Delay) * 1000 / l.Zone.Rate
	}
	for j := len(held) - 1; j >= 0; j-- {
		h := held[j]
		l := limits[h.i]
		e := zones[h.i].settle(h.node, l.Zone.Rate, now)
		if e <= l.Delay {
			continue
		}
		if d := (e - l.Delay) * 1000 / l.Zone.Rate; d > maxDelay {
			maxDelay, excess, zone = d, e, l.Zone.Name
		}
	}
	return maxDelay, excess, zone
}

// milliString prints milli-requests as nginx does: "0.520".
func milliString(v int64) string { return fmt.Sprintf("%d.%03d", v/1000, v%1000) }

// dryRun is the ", dry run" of limit log lines.
func dryRun(on bool) string {
	if on {
		return ", dry run"
	}
	return ""
}

// limitKey evaluates a limit zone's key for the request: false for an
// empty key (no limit applies) or one over max bytes (logged as nginx
// does: 65535 for limit_req, 255 for limit_conn).
func (rq *request) limitKey(z *nginxconf.LimitZone, max int) (string, bool) {
	key := z.Key.Eval(rq.v)
	if key == "" {
		return "", false
	}
	if len(key) > max {
		rq.logf(ngxlog.Err, `the value of the "%s" key is more than %d bytes: "%s"`, z.Key.String(), max, key)
		return "", false
	}
	return key, true
}
