package proxy

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"weak"

	"ngxsockify/nginxconf"
)

// This file holds what limit_req and limit_conn zones share: their memory
// bound, the zones that survive a reload, and the clock.
//
// nginx keeps a zone's states in a shared memory zone of the size written
// (zone=name:size) and allocates each state from its slab allocator, so
// the size bounds how many keys a zone holds. Each zone keeps its states
// in a slab.Pool of its size, so that it fills up after as many keys as
// nginx's does, and the same states are evicted.

// Node sizes as nginx computes them: the red-black tree node up to its
// color field (32 bytes), the module's node up to its data, and the key.
const (
	reqNodeHeader  = 32 + 48
	connNodeHeader = 32 + 4
)

// zoneKey identifies a zone across reloads: nginx reuses a shared zone of
// the same name, size and module, with its states.
type zoneKey struct {
	name string
	conn bool
	size int64
}

// storedZone is a runtime zone (*reqZone or *connZone) and its key.
type storedZone struct {
	key  string
	zone any
}

// zoneStore holds a Server's zones, so that a reload keeps their states.
// Each load starts a new generation holding the zones it uses; the last
// one is what the next load reuses.
type zoneStore struct {
	mu   sync.Mutex
	prev map[zoneKey]storedZone // the last load's zones
	next map[zoneKey]storedZone // this load's
}

// zoneStores maps each Server (weakly) to its zoneStore; an entry goes
// when its Server is collected.
var zoneStores sync.Map // weak.Pointer[Server] -> *zoneStore

func (s *Server) zoneStore() *zoneStore {
	wp := weak.Make(s)
	v, loaded := zoneStores.LoadOrStore(wp, &zoneStore{})
	if !loaded {
		runtime.AddCleanup(s, func(wp weak.Pointer[Server]) { zoneStores.Delete(wp) }, wp)
	}
	return v.(*zoneStore)
}

// zone returns the runtime zone of z, reusing the one the previous load
// built for the same name, kind and size. As in nginx, a reused zone
// cannot change its key: the load fails.
func (zs *zoneStore) zone(z *nginxconf.LimitZone, build func() any) (any, error) {
	k := zoneKey{name: z.Name, conn: z.Conn, size: z.Size}
	key := z.Key.String()
	if v, ok := zs.next[k]; ok {
		return v.zone, nil
	}
	v, ok := zs.prev[k]
	switch {
	case ok && v.key != key:
		what := "limit_req"
		if z.Conn {
			what = "limit_conn_zone"
		}
		return nil, fmt.Errorf(`%s "%s" uses the "%s" key while previously it used the "%s" key`, what, z.Name, key, v.key)
	case !ok:
		v = storedZone{key: key, zone: build()}
	}
	zs.next[k] = v
	return v.zone, nil
}

// limitConf is a level's runtime part of the limit modules: the zones of
// its limit_req and limit_conn lists, in the same order.
type limitConf struct {
	req  []*reqZone
	conn []*connZone
}

// provisionLimits builds the zones of every level's limits.
func provisionLimits(s *Server, st *state) error {
	zs := s.zoneStore()
	zs.mu.Lock() // loads are serialised; this guards against a concurrent test
	defer zs.mu.Unlock()
	zs.next = map[zoneKey]storedZone{}
	for _, lc := range st.cfg.HTTP.Confs {
		rt := &st.confs[lc.ID].limits
		for _, l := range lc.LimitReq {
			z, err := zs.zone(l.Zone, func() any { return newReqZone(l.Zone) })
			if err != nil {
				return err
			}
			rt.req = append(rt.req, z.(*reqZone))
		}
		for _, l := range lc.LimitConn {
			z, err := zs.zone(l.Zone, func() any { return newConnZone(l.Zone) })
			if err != nil {
				return err
			}
			rt.conn = append(rt.conn, z.(*connZone))
		}
	}
	// A zone no level uses was never built; as nginx's, it is kept only
	// while declared, and an unused declaration holds nothing here.
	zs.prev = zs.next
	return nil
}

// clockEpoch anchors nowMsec, nginx's ngx_current_msec: a monotonic clock
// in milliseconds.
var clockEpoch = time.Now()

func nowMsec() int64 { return time.Since(clockEpoch).Milliseconds() }
