package luahooks

import (
	lua "github.com/yuin/gopher-lua"
)

// shList is a shared-dict list (lpush/rpush/lpop/rpop/llen): items are
// strings or float64s, item 0 the head.
type shList struct {
	items []any
}

// shListNodeOverhead approximates a list node's cost in nginx's zone.
const shListNodeOverhead = 32

func listItemSize(v any) int64 {
	if s, ok := v.(string); ok {
		return int64(len(s)) + shListNodeOverhead
	}
	return 8 + shListNodeOverhead
}

func (l *shList) size() int64 {
	var n int64
	for _, v := range l.items {
		n += listItemSize(v)
	}
	return n
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
		L.Push(lua.LNil)
		L.Push(lua.LString("bad value type"))
		return 2
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	e := d.m[key]
	if e != nil && d.live(key, now) == nil {
		d.remove(key)
		e = nil
	}
	if e != nil {
		if _, isList := e.val.(*shList); !isList {
			L.Push(lua.LNil)
			L.Push(lua.LString("value not a list"))
			return 2
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
	size := listItemSize(v)
	if e == nil {
		size += entrySize(key, &shList{})
	}
	if d.capacity > 0 && d.used+size > d.capacity {
		d.removeExpired(now) // expired items' room is reused, not evicted valid ones
	}
	if d.capacity > 0 && d.used+size > d.capacity {
		L.Push(lua.LNil)
		L.Push(lua.LString("no memory"))
		return 2
	}
	if e == nil {
		e = &shEntry{val: &shList{}}
		d.m[key] = e
	}
	l := e.val.(*shList)
	if head {
		l.items = append([]any{v}, l.items...)
	} else {
		l.items = append(l.items, v)
	}
	d.used += size
	L.Push(lua.LNumber(len(l.items)))
	return 1
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
	e := d.live(key, d.now())
	if e == nil {
		L.Push(lua.LNil)
		return 1
	}
	l, isList := e.val.(*shList)
	if !isList {
		L.Push(lua.LNil)
		L.Push(lua.LString("value not a list"))
		return 2
	}
	var v any
	if head {
		v = l.items[0]
	} else {
		v = l.items[len(l.items)-1]
	}
	if !st.replaying {
		if head {
			l.items = l.items[1:]
		} else {
			l.items = l.items[:len(l.items)-1]
		}
		d.used -= listItemSize(v)
		if len(l.items) == 0 {
			d.remove(key)
		}
	}
	pushShValue(L, v)
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
	e := d.live(key, d.now())
	if e == nil {
		L.Push(lua.LNumber(0))
		return 1
	}
	l, isList := e.val.(*shList)
	if !isList {
		L.Push(lua.LNil)
		L.Push(lua.LString("value not a list"))
		return 2
	}
	L.Push(lua.LNumber(len(l.items)))
	return 1
}
