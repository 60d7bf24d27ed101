package luahooks

import (
	"container/list"
	"math"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"ngxsockify/internal/slab"
)

// SharedDict is one lua_shared_dict zone: shared by every Lua state of a
// Runtime and safe for concurrent use. Values are strings, numbers or
// booleans with optional integer flags and an expiry time.
//
// Each entry is a node of nginx's size in a slab.Pool of the zone's size,
// and the entries are kept in nginx's LRU queue (lookups move an entry to
// its front), so a zone holds as many entries as nginx's and a full zone
// evicts the same ones (ngx_http_lua_shdict.c).
type SharedDict struct {
	name     string
	capacity int64

	mu   sync.Mutex
	m    map[string]*shEntry
	lru  list.List // *shEntry, most recently used first
	pool *slab.Pool
	now  func() time.Time
}

type shEntry struct {
	key     string
	val     any // string, float64, bool or *shList
	flags   int64
	expires time.Time // zero: never
	elem    *list.Element
	chunk   slab.Chunk
}

// NewSharedDict returns an empty dictionary of size bytes.
func NewSharedDict(name string, size int64) *SharedDict {
	d := &SharedDict{name: name, capacity: size, m: map[string]*shEntry{}, pool: slab.New(size), now: time.Now}
	// The zone's own allocations (ngx_http_lua_shdict_init_zone): its
	// tree, sentinel and queue, and the name the allocator's errors give.
	d.pool.Alloc(24 + 40 + 16)
	d.pool.Alloc(len(` in lua_shared_dict zone ""`) + 1 + len(name))
	return d
}

// shNodeSize is what nginx allocates for an entry: the red-black tree
// node up to its color field, lua-nginx-module's node up to its data, the
// key and the value (a number is a double, a boolean one byte).
func shNodeSize(key string, v any) int {
	return 32 + 36 + len(key) + shValueLen(v)
}

func shValueLen(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case float64:
		return 8
	case *shList:
		return 16 // the queue of its items (ngx_queue_t)
	}
	return 1
}

func (e *shEntry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

func (d *SharedDict) live(key string, now time.Time) *shEntry {
	e := d.m[key]
	if e == nil || e.expired(now) {
		return nil
	}
	return e
}

// lookup finds key, expired or not, and makes it the most recently used
// (ngx_http_lua_shdict_lookup).
func (d *SharedDict) lookup(key string) *shEntry {
	e := d.m[key]
	if e != nil {
		d.lru.MoveToFront(e.elem)
	}
	return e
}

func (d *SharedDict) remove(e *shEntry) {
	d.lru.Remove(e.elem)
	delete(d.m, e.key)
	d.pool.Free(e.chunk)
	if l, ok := e.val.(*shList); ok {
		for _, it := range l.items {
			d.pool.Free(it.chunk)
		}
	}
}

// expire is ngx_http_lua_shdict_expire: with force false it frees the one
// or two least recently used entries if they have expired; with force true
// it frees the least recently used entry whatever its expiry, then as
// with false. It returns how many it freed.
func (d *SharedDict) expire(force bool, now time.Time) int {
	freed := 0
	n := 1
	if force {
		n = 0
	}
	for ; n < 3; n++ {
		last := d.lru.Back()
		if last == nil {
			break
		}
		e := last.Value.(*shEntry)
		if n != 0 && !e.expired(now) {
			break
		}
		d.remove(e)
		freed++
	}
	return freed
}

// insert adds a new entry of size bytes. Unless safe, a full zone evicts
// least recently used entries (30 times at most) until the entry fits:
// forcible reports that it did.
func (d *SharedDict) insert(key string, v any, safe bool, now time.Time) (e *shEntry, forcible bool) {
	size := shNodeSize(key, v)
	c, ok := d.pool.Alloc(size)
	for i := 0; !ok && !safe && i < 30; i++ {
		if d.expire(true, now) == 0 {
			break
		}
		forcible = true
		c, ok = d.pool.Alloc(size)
	}
	if !ok {
		return nil, forcible
	}
	e = &shEntry{key: key, val: v, chunk: c}
	e.elem = d.lru.PushFront(e)
	d.m[key] = e
	return e, forcible
}

func (e *shEntry) setTTL(ttl float64, now time.Time) {
	e.expires = time.Time{}
	if ttl > 0 {
		e.expires = now.Add(time.Duration(ttl * float64(time.Second)))
	}
}

// store is set, add, replace and their safe_ forms (v nil deletes), as
// ngx_http_lua_ffi_shdict_store: a value of the length the entry has is
// written in place; otherwise the entry is freed and a new one inserted.
func (d *SharedDict) store(op string, key string, v any, flags int64, ttl float64, safe bool, now time.Time) (forcible bool, err string) {
	d.expire(false, now)
	e := d.lookup(key)
	switch {
	case op == "replace" && (e == nil || e.expired(now)):
		return false, "not found"
	case op == "add" && e != nil && !e.expired(now):
		return false, "exists"
	}
	if e != nil {
		if _, list := e.val.(*shList); v != nil && !list && shValueLen(v) == shValueLen(e.val) {
			e.val, e.flags = v, flags
			e.setTTL(ttl, now)
			return false, ""
		}
		d.remove(e)
	}
	if v == nil {
		return false, ""
	}
	e, forcible = d.insert(key, v, safe, now)
	if e == nil {
		return forcible, "no memory"
	}
	e.flags = flags
	e.setTTL(ttl, now)
	return forcible, ""
}

func (st *state) openShared() *lua.LTable {
	L := st.L
	shared := L.NewTable()
	methods := map[string]lua.LGFunction{
		"get":           func(L *lua.LState) int { return st.shGet(L, false) },
		"get_stale":     func(L *lua.LState) int { return st.shGet(L, true) },
		"set":           func(L *lua.LState) int { return st.shSet(L, "set", false) },
		"safe_set":      func(L *lua.LState) int { return st.shSet(L, "set", true) },
		"add":           func(L *lua.LState) int { return st.shSet(L, "add", false) },
		"safe_add":      func(L *lua.LState) int { return st.shSet(L, "add", true) },
		"replace":       func(L *lua.LState) int { return st.shSet(L, "replace", false) },
		"delete":        st.shDelete,
		"incr":          st.shIncr,
		"ttl":           st.shTTL,
		"expire":        st.shExpire,
		"get_keys":      st.shGetKeys,
		"flush_all":     st.shFlushAll,
		"flush_expired": st.shFlushExpired,
		"lpush":         func(L *lua.LState) int { return st.shPush(L, true) },
		"rpush":         func(L *lua.LState) int { return st.shPush(L, false) },
		"lpop":          func(L *lua.LState) int { return st.shPop(L, true) },
		"rpop":          func(L *lua.LState) int { return st.shPop(L, false) },
		"llen":          st.shLlen,
		"capacity":      func(L *lua.LState) int { L.Push(lua.LNumber(st.dict(L).capacity)); return 1 },
		"free_space": func(L *lua.LState) int {
			d := st.dict(L)
			d.mu.Lock()
			free := d.pool.FreePages() * slab.PageSize // resty.core: the free pages
			d.mu.Unlock()
			L.Push(lua.LNumber(free))
			return 1
		},
	}
	// As resty.core: a zone is {[1] = zone}; its methods are in the
	// metatable, which is its own __index (pairs sees only [1]).
	mt := L.NewTable()
	L.SetFuncs(mt, methods)
	mt.RawSetString("__index", mt)
	for name, d := range st.rt.shared {
		t := L.NewTable()
		ud := L.NewUserData()
		ud.Value = d
		t.RawSetInt(1, ud)
		L.SetMetatable(t, mt)
		shared.RawSetString(name, t)
	}
	return shared
}

// dict returns the SharedDict of the zone table passed as self.
func (st *state) dict(L *lua.LState) *SharedDict {
	t, ok := L.Get(1).(*lua.LTable)
	if !ok {
		L.RaiseError("bad \"zone\" argument")
	}
	ud, ok := t.RawGetInt(1).(*lua.LUserData)
	if !ok {
		L.RaiseError("bad \"zone\" argument")
	}
	d, ok := ud.Value.(*SharedDict)
	if !ok {
		L.RaiseError("bad \"zone\" argument")
	}
	return d
}

// shKey reads the key argument; the error is resty.core's: "nil key",
// "empty key" or "key too long" (over 65535 bytes).
func shKey(L *lua.LState) (string, string) {
	var key string
	switch k := L.Get(2).(type) {
	case lua.LString:
		key = string(k)
	case lua.LNumber:
		key = formatNumber(float64(k))
	case *lua.LNilType:
		return "", "nil key"
	default:
		key = L.ToStringMeta(k).String()
	}
	switch {
	case key == "":
		return "", "empty key"
	case len(key) > 65535:
		return "", "key too long"
	}
	return key, ""
}

// shKeyError pushes first (nil or false) and the key error.
func shKeyError(L *lua.LState, first lua.LValue, msg string) int {
	L.Push(first)
	L.Push(lua.LString(msg))
	return 2
}

func pushShValue(L *lua.LState, v any) {
	switch x := v.(type) {
	case string:
		L.Push(lua.LString(x))
	case float64:
		L.Push(lua.LNumber(x))
	case bool:
		L.Push(lua.LBool(x))
	default:
		L.Push(lua.LNil)
	}
}

func (st *state) shGet(L *lua.LState, stale bool) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	e := d.lookup(key)
	if e == nil || (!stale && e.expired(now)) {
		L.Push(lua.LNil)
		return 1
	}
	if _, isList := e.val.(*shList); isList {
		return fail(L, "value is a list")
	}
	pushShValue(L, e.val)
	n := 1
	if e.flags != 0 || stale {
		if e.flags != 0 {
			L.Push(lua.LNumber(e.flags))
		} else {
			L.Push(lua.LNil)
		}
		n++
	}
	if stale {
		L.Push(lua.LBool(e.expired(now)))
		n++
	}
	return n
}

func (st *state) shSet(L *lua.LState, op string, safe bool) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr) // nil, not false (resty.core)
	}
	var v any
	switch x := L.Get(3).(type) {
	case lua.LString:
		v = string(x)
	case lua.LNumber:
		v = float64(x)
	case lua.LBool:
		v = bool(x)
	case *lua.LNilType:
		if op != "set" {
			// add, safe_add and replace refuse nil before they look at
			// the key.
			L.Push(lua.LFalse)
			L.Push(lua.LString("attempt to add or replace nil values"))
			L.Push(lua.LFalse)
			return 3
		}
		v = nil
	default:
		return fail(L, "bad value type")
	}
	ttl := float64(L.OptNumber(4, 0))
	if ttl < 0 {
		L.ArgError(4, "bad \"exptime\" argument")
	}
	flags := int64(L.OptNumber(5, 0))
	if st.replaying {
		L.Push(lua.LTrue)
		L.Push(lua.LNil)
		L.Push(lua.LFalse)
		return 3
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	forcible, errMsg := d.store(op, key, v, flags, ttl, safe, d.now())
	if errMsg != "" {
		L.Push(lua.LFalse)
		L.Push(lua.LString(errMsg))
		L.Push(lua.LBool(forcible))
		return 3
	}
	L.Push(lua.LTrue)
	L.Push(lua.LNil)
	L.Push(lua.LBool(forcible))
	return 3
}

func (st *state) shDelete(L *lua.LState) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr)
	}
	if !st.replaying {
		d.mu.Lock()
		d.store("set", key, nil, 0, 0, false, d.now())
		d.mu.Unlock()
	}
	// resty.core's delete is set(key, nil): true, nil, false.
	L.Push(lua.LTrue)
	L.Push(lua.LNil)
	L.Push(lua.LFalse)
	return 3
}

// shIncrInit reads incr's init and init_ttl arguments with resty.core's
// checks, which raise; init is nil without one (nil or false).
func shIncrInit(L *lua.LState) (lua.LValue, float64) {
	init := L.Get(4)
	if lua.LVIsFalse(init) {
		init = lua.LNil
	} else {
		init = restyToNumber(L, init, "init")
	}
	ttlArg := L.Get(5)
	if ttlArg == lua.LNil {
		return init, 0
	}
	ttl := restyToNumber(L, ttlArg, "init_ttl")
	switch {
	case ttl < 0:
		cError(L, `bad "init_ttl" argument`)
	case init == lua.LNil:
		cError(L, `must provide "init" when providing "init_ttl"`)
	}
	return init, float64(ttl)
}

// restyToNumber is resty.core's tonumber() of a number argument: a number
// or a numeric string, else "bad <name> arg: number expected, got <type>".
func restyToNumber(L *lua.LState, v lua.LValue, name string) lua.LNumber {
	switch x := v.(type) {
	case lua.LNumber:
		return x
	case lua.LString:
		if f, ok := parseLuaNumber(string(x)); ok {
			return lua.LNumber(f)
		}
	}
	cError(L, "bad %s arg: number expected, got %s", name, v.Type())
	return 0
}

func (st *state) shIncr(L *lua.LState) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr)
	}
	initV, initTTL := shIncrInit(L)
	delta, isNum := L.Get(3).(lua.LNumber)
	if !isNum {
		if s, isStr := L.Get(3).(lua.LString); isStr {
			if f, good := parseLuaNumber(string(s)); good {
				delta, isNum = lua.LNumber(f), true
			}
		}
	}
	if !isNum {
		return fail(L, "cannot add value to a non-number")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if st.replaying {
		if e := d.live(key, now); e != nil {
			if cur, ok := e.val.(float64); ok {
				L.Push(lua.LNumber(cur))
				return 1
			}
		}
		return fail(L, "not found")
	}
	// ngx_http_lua_ffi_shdict_incr
	d.expire(false, now)
	e := d.lookup(key)
	if e == nil || e.expired(now) {
		if initV == lua.LNil {
			return fail(L, "not found")
		}
		nv := float64(initV.(lua.LNumber)) + float64(delta)
		forcible := false
		switch {
		case e != nil && shValueLen(e.val) == 8:
			e.val = nv // an expired entry of a double's length is reused
		case e != nil:
			d.remove(e)
			e = nil
		}
		if e == nil {
			e, forcible = d.insert(key, nv, false, now)
			if e == nil {
				return fail(L, "no memory")
			}
		}
		e.flags = 0
		e.setTTL(initTTL, now)
		L.Push(lua.LNumber(nv))
		L.Push(lua.LNil)
		L.Push(lua.LBool(forcible))
		return 3
	}
	cur, ok := e.val.(float64)
	if !ok {
		return fail(L, "not a number")
	}
	e.val = cur + float64(delta)
	L.Push(lua.LNumber(e.val.(float64)))
	if initV == lua.LNil {
		return 1 // resty.core answers only the value without init
	}
	L.Push(lua.LNil)
	L.Push(lua.LFalse)
	return 3
}

func (st *state) shTTL(L *lua.LState) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	e := d.m[key] // an expired entry still answers, below zero; not moved in the queue
	if e == nil {
		return fail(L, "not found")
	}
	if e.expires.IsZero() {
		L.Push(lua.LNumber(0))
		return 1
	}
	ms := math.Ceil(float64(e.expires.Sub(now)) / float64(time.Millisecond))
	L.Push(lua.LNumber(ms / 1000))
	return 1
}

func (st *state) shExpire(L *lua.LState) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr)
	}
	ttl := float64(L.CheckNumber(3))
	if ttl < 0 {
		L.ArgError(3, "bad \"exptime\" argument")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.m[key] // an expired entry is given a new life too; not moved in the queue
	if e == nil {
		return fail(L, "not found")
	}
	e.setTTL(ttl, d.now())
	L.Push(lua.LTrue)
	return 1
}

// shGetKeys lists the live keys from the least recently used, as
// ngx_http_lua_shdict_get_keys walks nginx's queue.
func (st *state) shGetKeys(L *lua.LState) int {
	d := st.dict(L)
	max := L.OptInt(2, 1024)
	d.mu.Lock()
	now := d.now()
	var keys []string
	for q := d.lru.Back(); q != nil && (max <= 0 || len(keys) < max); q = q.Prev() {
		if e := q.Value.(*shEntry); !e.expired(now) {
			keys = append(keys, e.key)
		}
	}
	d.mu.Unlock()
	t := L.CreateTable(len(keys), 0)
	for _, k := range keys {
		t.Append(lua.LString(k))
	}
	L.Push(t)
	return 1
}

func (st *state) shFlushAll(L *lua.LState) int {
	d := st.dict(L)
	if st.replaying {
		return 0
	}
	d.mu.Lock()
	// nginx marks every item expired; get_stale can still see them.
	now := d.now()
	for _, e := range d.m {
		e.expires = now
	}
	d.mu.Unlock()
	return 0
}

// shFlushExpired frees expired entries from the least recently used, max
// of them at most (0: all).
func (st *state) shFlushExpired(L *lua.LState) int {
	d := st.dict(L)
	if st.replaying {
		L.Push(lua.LNumber(0))
		return 1
	}
	max := L.OptInt(2, 0)
	d.mu.Lock()
	now := d.now()
	n := 0
	for q := d.lru.Back(); q != nil && (max <= 0 || n < max); {
		e := q.Value.(*shEntry)
		q = q.Prev()
		if e.expired(now) {
			d.remove(e)
			n++
		}
	}
	d.mu.Unlock()
	L.Push(lua.LNumber(n))
	return 1
}
