package luahooks

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"ngxsockify/internal/slab"
)

// shList is a shared-dict list (lpush/rpush/lpop/rpop/llen): items are
// strings or float64s, item 0 the head. Each item has its own room in the
// zone, as lua-nginx-module allocates a node per item.
type shList struct {
	items []shListItem
}

type shListItem struct {
	v     any
	chunk slab.Chunk
}

// listItemSize is what an item's node takes: its queue links, type and
// length, then the value.
func listItemSize(v any) int {
	if s, ok := v.(string); ok {
		return 24 + len(s)
	}
	return 24 + 8
}

// shListArgs checks a list method's arguments as lua-nginx-module's C
// functions do: the count (raises), the zone, then the key (nil, err).
func (st *state) shListArgs(L *lua.LState, want int) (*SharedDict, string, bool) {
	if n := L.GetTop(); n != want {
		// luaL_error in a C function: no position
		L.Error(lua.LString(sprintf("expecting %d arguments, but only seen %d", want, n)), 0)
	}
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		shKeyError(L, lua.LNil, kerr)
		return nil, "", false
	}
	return d, key, true
}

// shPush is lpush (head) and rpush: the list's new length; a live key
// that is not a list is "value not a list"; an expired one starts over
// (an expired list keeps no items and no expiry).
func (st *state) shPush(L *lua.LState, head bool) int {
	d, key, ok := st.shListArgs(L, 3)
	if !ok {
		return 2
	}
	var v any
	switch x := L.Get(3).(type) {
	case lua.LString:
		v = string(x)
	case lua.LNumber:
		v = float64(x)
	default:
		return fail(L, "bad value type")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	e := d.lookup(key)
	if e != nil && e.expired(now) {
		d.remove(e)
		e = nil
	}
	if e != nil {
		if _, isList := e.val.(*shList); !isList {
			return fail(L, "value not a list")
		}
	}
	if st.replaying { // init_by_lua's write, done once already
		n := 1
		if e != nil {
			n += len(e.val.(*shList).items)
		}
		L.Push(lua.LNumber(n))
		return 1
	}
	// A full zone reuses expired entries' room; it evicts no live ones.
	if e == nil {
		if e, _ = d.insert(key, &shList{}, true, now); e == nil {
			d.removeExpired(now)
			e, _ = d.insert(key, &shList{}, true, now)
		}
		if e == nil {
			return fail(L, "no memory")
		}
	}
	l := e.val.(*shList)
	c, ok := d.pool.Alloc(listItemSize(v))
	if !ok {
		d.removeExpired(now)
		c, ok = d.pool.Alloc(listItemSize(v))
	}
	if !ok {
		if len(l.items) == 0 {
			d.remove(e)
		}
		return fail(L, "no memory")
	}
	it := shListItem{v: v, chunk: c}
	if head {
		l.items = append([]shListItem{it}, l.items...)
	} else {
		l.items = append(l.items, it)
	}
	L.Push(lua.LNumber(len(l.items)))
	return 1
}

// removeExpired frees every expired entry's room.
func (d *SharedDict) removeExpired(now time.Time) {
	for _, e := range d.m {
		if e.expired(now) {
			d.remove(e)
		}
	}
}

// shPop is lpop (head) and rpop: the item, nil when the key is missing or
// expired; the last item's pop deletes the key.
func (st *state) shPop(L *lua.LState, head bool) int {
	d, key, ok := st.shListArgs(L, 2)
	if !ok {
		return 2
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, l, err := d.liveList(key)
	if err != "" {
		return fail(L, err)
	}
	if e == nil {
		L.Push(lua.LNil)
		return 1
	}
	var it shListItem
	if head {
		it = l.items[0]
	} else {
		it = l.items[len(l.items)-1]
	}
	if !st.replaying {
		if head {
			l.items = l.items[1:]
		} else {
			l.items = l.items[:len(l.items)-1]
		}
		d.pool.Free(it.chunk)
		if len(l.items) == 0 {
			d.remove(e)
		}
	}
	pushShValue(L, it.v)
	return 1
}

// shLlen is llen: the list's length, 0 for a missing or expired key.
func (st *state) shLlen(L *lua.LState) int {
	d, key, ok := st.shListArgs(L, 2)
	if !ok {
		return 2
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, l, err := d.liveList(key)
	if err != "" {
		return fail(L, err)
	}
	n := 0
	if e != nil {
		n = len(l.items)
	}
	L.Push(lua.LNumber(n))
	return 1
}

// liveList finds key as lpop, rpop and llen do (ngx_http_lua_shdict_lookup:
// the entry becomes the most recently used): the entry and its list, nil
// when the key is missing or expired, or "value not a list" for a live
// entry of another type.
func (d *SharedDict) liveList(key string) (*shEntry, *shList, string) {
	e := d.lookup(key)
	if e == nil || e.expired(d.now()) {
		return nil, nil, ""
	}
	l, isList := e.val.(*shList)
	if !isList {
		return nil, nil, "value not a list"
	}
	return e, l, ""
}
