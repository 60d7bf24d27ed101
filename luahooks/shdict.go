package luahooks

import (
	"math"
	"sort"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// SharedDict is one lua_shared_dict zone: shared by every Lua state of a
// Runtime and safe for concurrent use. Values are strings, numbers or
// booleans with optional integer flags and an expiry time.
type SharedDict struct {
	name     string
	capacity int64

	mu   sync.Mutex
	m    map[string]*shEntry
	used int64
	now  func() time.Time
}

type shEntry struct {
	val     any // string, float64, bool or *shList
	flags   int64
	expires time.Time // zero: never
}

// shEntryOverhead approximates nginx's per-node cost in the zone.
const shEntryOverhead = 64

// NewSharedDict returns an empty dictionary holding about size bytes.
func NewSharedDict(name string, size int64) *SharedDict {
	return &SharedDict{name: name, capacity: size, m: map[string]*shEntry{}, now: time.Now}
}

func entrySize(key string, v any) int64 {
	n := int64(len(key)) + shEntryOverhead
	switch x := v.(type) {
	case string:
		n += int64(len(x))
	case *shList:
		n += x.size()
	default:
		n += 8
	}
	return n
}

func (d *SharedDict) live(key string, now time.Time) *shEntry {
	e := d.m[key]
	if e == nil {
		return nil
	}
	if !e.expires.IsZero() && !now.Before(e.expires) {
		return nil
	}
	return e
}

func (d *SharedDict) remove(key string) {
	if e := d.m[key]; e != nil {
		d.used -= entrySize(key, e.val)
		delete(d.m, key)
	}
}

// removeExpired frees the expired entries' room.
func (d *SharedDict) removeExpired(now time.Time) {
	for k := range d.m {
		if d.live(k, now) == nil {
			d.remove(k)
		}
	}
}

// store writes key; forcible reports whether valid items were evicted.
func (d *SharedDict) store(key string, v any, flags int64, ttl float64, safe bool, now time.Time) (ok bool, forcible bool, err string) {
	d.remove(key)
	size := entrySize(key, v)
	if d.capacity > 0 && d.used+size > d.capacity {
		// Evict expired entries first, then (unless safe) the soonest to
		// expire / arbitrary ones, as nginx's LRU would.
		d.removeExpired(now)
		if d.used+size > d.capacity {
			if safe {
				return false, false, "no memory"
			}
			keys := make([]string, 0, len(d.m))
			for k := range d.m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if d.used+size <= d.capacity {
					break
				}
				d.remove(k)
				forcible = true
			}
			if d.used+size > d.capacity {
				return false, forcible, "no memory"
			}
		}
	}
	e := &shEntry{val: v, flags: flags}
	if ttl > 0 {
		e.expires = now.Add(time.Duration(ttl * float64(time.Second)))
	}
	d.m[key] = e
	d.used += size
	return true, forcible, ""
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
		"capacity":      func(L *lua.LState) int { L.Push(lua.LNumber(st.dict(L).capacity)); return 1 },
		"lpush":         func(L *lua.LState) int { return st.shPush(L, true) },
		"rpush":         func(L *lua.LState) int { return st.shPush(L, false) },
		"lpop":          func(L *lua.LState) int { return st.shPop(L, true) },
		"rpop":          func(L *lua.LState) int { return st.shPop(L, false) },
		"llen":          st.shLlen,
		"free_space": func(L *lua.LState) int {
			d := st.dict(L)
			d.mu.Lock()
			free := d.capacity - d.used
			d.mu.Unlock()
			if free < 0 {
				free = 0
			}
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
	e := d.m[key]
	if e == nil || (!stale && d.live(key, now) == nil) {
		L.Push(lua.LNil)
		return 1
	}
	if _, isList := e.val.(*shList); isList {
		L.Push(lua.LNil)
		L.Push(lua.LString("value is a list"))
		return 2
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
		L.Push(lua.LBool(d.live(key, now) == nil))
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
		L.Push(lua.LNil)
		L.Push(lua.LString("bad value type"))
		return 2
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
	now := d.now()
	exists := d.live(key, now) != nil
	switch op {
	case "add":
		if exists {
			L.Push(lua.LFalse)
			L.Push(lua.LString("exists"))
			L.Push(lua.LFalse)
			return 3
		}
	case "replace":
		if !exists {
			L.Push(lua.LFalse)
			L.Push(lua.LString("not found"))
			L.Push(lua.LFalse)
			return 3
		}
	}
	if v == nil {
		d.remove(key)
		L.Push(lua.LTrue)
		L.Push(lua.LNil)
		L.Push(lua.LFalse)
		return 3
	}
	okStore, forcible, errMsg := d.store(key, v, flags, ttl, safe, now)
	if !okStore {
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
		d.remove(key)
		d.mu.Unlock()
	}
	// resty.core's delete is set(key, nil): true, nil, false.
	L.Push(lua.LTrue)
	L.Push(lua.LNil)
	L.Push(lua.LFalse)
	return 3
}

func (st *state) shIncr(L *lua.LState) int {
	d := st.dict(L)
	key, kerr := shKey(L)
	if kerr != "" {
		return shKeyError(L, lua.LNil, kerr)
	}
	delta, isNum := L.Get(3).(lua.LNumber)
	if !isNum {
		if s, isStr := L.Get(3).(lua.LString); isStr {
			if f, good := parseLuaNumber(string(s)); good {
				delta, isNum = lua.LNumber(f), true
			}
		}
	}
	if !isNum {
		L.Push(lua.LNil)
		L.Push(lua.LString("cannot add value to a non-number"))
		return 2
	}
	// resty.core checks init and init_ttl before the dict: a false init
	// is none; a string must be a number; the errors raise.
	initV := L.Get(4)
	if !lua.LVAsBool(initV) {
		initV = lua.LNil
	} else {
		initV = restyToNumber(L, initV, "init")
	}
	initTTL := 0.0
	if tv := L.Get(5); tv != lua.LNil {
		n := restyToNumber(L, tv, "init_ttl")
		if n < 0 {
			restyError(L, 2, `bad "init_ttl" argument`)
		}
		if initV == lua.LNil {
			restyError(L, 2, `must provide "init" when providing "init_ttl"`)
		}
		initTTL = float64(n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	e := d.live(key, now)
	if st.replaying {
		if e != nil {
			if cur, ok := e.val.(float64); ok {
				L.Push(lua.LNumber(cur))
				return 1
			}
		}
		L.Push(lua.LNil)
		L.Push(lua.LString("not found"))
		return 2
	}
	if e == nil {
		if initV == lua.LNil {
			L.Push(lua.LNil)
			L.Push(lua.LString("not found"))
			return 2
		}
		nv := float64(initV.(lua.LNumber)) + float64(delta)
		_, forcible, errMsg := d.store(key, nv, 0, initTTL, false, now)
		if errMsg != "" {
			L.Push(lua.LNil)
			L.Push(lua.LString(errMsg))
			return 2
		}
		L.Push(lua.LNumber(nv))
		L.Push(lua.LNil)
		L.Push(lua.LBool(forcible))
		return 3
	}
	cur, ok := e.val.(float64)
	if !ok {
		L.Push(lua.LNil)
		L.Push(lua.LString("not a number"))
		return 2
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
	e := d.live(key, now)
	if e == nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("not found"))
		return 2
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
	now := d.now()
	e := d.live(key, now)
	if e == nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("not found"))
		return 2
	}
	if ttl == 0 {
		e.expires = time.Time{}
	} else {
		e.expires = now.Add(time.Duration(ttl * float64(time.Second)))
	}
	L.Push(lua.LTrue)
	return 1
}

func (st *state) shGetKeys(L *lua.LState) int {
	d := st.dict(L)
	max := L.OptInt(2, 1024)
	d.mu.Lock()
	now := d.now()
	keys := make([]string, 0, len(d.m))
	for k := range d.m {
		if d.live(k, now) != nil {
			keys = append(keys, k)
		}
	}
	d.mu.Unlock()
	sort.Strings(keys)
	if max > 0 && len(keys) > max {
		keys = keys[:max]
	}
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
	keys := make([]string, 0)
	for k := range d.m {
		if d.live(k, now) == nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if max > 0 && n >= max {
			break
		}
		d.remove(k)
		n++
	}
	d.mu.Unlock()
	L.Push(lua.LNumber(n))
	return 1
}

// restyToNumber is resty.core's tonumber() of a number argument: a number
// or a numeric string, else "bad <name> arg: number expected, got <type>"
// raised at the caller.
func restyToNumber(L *lua.LState, v lua.LValue, name string) lua.LNumber {
	switch x := v.(type) {
	case lua.LNumber:
		return x
	case lua.LString:
		if f, ok := parseLuaNumber(string(x)); ok {
			return lua.LNumber(f)
		}
	}
	restyError(L, 2, "bad %s arg: number expected, got %s", name, typeName(v))
	return 0
}
