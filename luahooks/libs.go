package luahooks

import (
	"fmt"
	"math"
	"ngxsockify/ngxlog"
	"os"
	"runtime"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// luaNull is ngx.null and cjson.null: one userdata shared by every state so
// that values carried in ngx.ctx between states still compare equal.
var luaNull = &lua.LUserData{}

// loadSentinel marks a module being loaded (require loops).
var loadSentinel = &lua.LUserData{}

// openLibs builds a state's libraries: base (without dofile/loadfile, with LuaJIT's
// tonumber and tostring), package (require through package.path only),
// table, string, math, coroutine, io and os (iolib.go), bit, cjson and ngx.
func (st *state) openLibs() {
	L := st.L
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
		{lua.OsLibName, lua.OpenOs},
		{lua.DebugLibName, lua.OpenDebug},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	for _, name := range []string{"dofile", "loadfile", "_printregs", "newproxy"} {
		g.RawSetString(name, lua.LNil)
	}
	g.RawSetString("tonumber", L.NewFunction(baseToNumber))
	g.RawSetString(forNumName, L.NewFunction(baseForNum))
	g.RawSetString("tostring", L.NewFunction(baseToString))
	g.RawSetString("type", L.NewFunction(baseType)) // "cdata" as LuaJIT (ffi.go)
	g.RawSetString("print", L.NewFunction(st.basePrint))
	g.RawSetString("require", L.NewFunction(st.require))
	g.RawSetString("error", L.NewFunction(baseError))
	g.RawSetString("pcall", L.NewFunction(basePCall))
	g.RawSetString("xpcall", L.NewFunction(st.xpcall))
	g.RawSetString("collectgarbage", L.NewFunction(baseCollectGarbage))
	g.RawSetString("loadstring", L.NewFunction(baseLoadString))
	origLoad := g.RawGetString("load")
	g.RawSetString("load", L.NewFunction(func(L *lua.LState) int {
		if _, ok := L.Get(1).(lua.LString); ok {
			return baseLoadString(L)
		}
		top := L.GetTop()
		L.Push(origLoad)
		for i := 1; i <= top; i++ {
			L.Push(L.Get(i))
		}
		L.Call(top, lua.MultRet)
		return L.GetTop() - top
	}))
	co := g.RawGetString("coroutine").(*lua.LTable)
	for _, name := range []string{"create", "wrap"} {
		orig := co.RawGetString(name).(*lua.LFunction)
		co.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			st.ownContext()
			top := L.GetTop()
			L.Push(orig)
			for i := 1; i <= top; i++ {
				L.Push(L.Get(i))
			}
			L.Call(top, lua.MultRet)
			return L.GetTop() - top
		}))
	}

	st.openCoroutineThreads(co)

	// os: gopher-lua's time, clock and difftime, our date, getenv (the
	// names listed with env, and TZ, as nginx leaves the environment) and
	// the rest with io as LuaJIT has them (iolib.go).
	osmod := g.RawGetString("os").(*lua.LTable)
	keep := map[string]bool{"time": true, "clock": true, "difftime": true}
	osmod.ForEach(func(k, _ lua.LValue) {
		if !keep[k.String()] {
			osmod.RawSet(k, lua.LNil)
		}
	})
	osmod.RawSetString("getenv", L.NewFunction(st.osGetenv))
	osmod.RawSetString("date", L.NewFunction(osDate))
	st.openIO()
	g.RawGetString("table").(*lua.LTable).RawSetString("concat", L.NewFunction(tableConcat))

	// debug: only getinfo and traceback, which look and change nothing
	// (the others reach locals, upvalues and metatables past the sandbox).
	dbg := g.RawGetString("debug").(*lua.LTable)
	dbg.ForEach(func(k, _ lua.LValue) {
		if name := k.String(); name != "getinfo" && name != "traceback" {
			dbg.RawSet(k, lua.LNil)
		}
	})
	dbg.RawSetString("getinfo", L.NewFunction(debugGetInfo(dbg.RawGetString("getinfo").(*lua.LFunction))))

	// gopher-lua's math.huge is MaxFloat64; Lua's is +inf.
	g.RawGetString("math").(*lua.LTable).RawSetString("huge", lua.LNumber(math.Inf(1)))

	strmod := g.RawGetString("string").(*lua.LTable)
	strmod.RawSetString("rep", L.NewFunction(strRep))
	// find, match, gmatch and gsub: our matcher, bounded by the run's time
	// limit (lpattern.go).
	openPatterns(L, strmod)
	strmod.RawSetString("format", L.NewFunction(strFormat))

	pkg := g.RawGetString("package").(*lua.LTable)
	pkg.RawSetString("path", lua.LString(st.rt.path))
	pkg.RawSetString("cpath", lua.LString(st.rt.cpath))
	pkg.RawSetString("loaders", L.NewTable())
	pkg.RawSetString("loadlib", lua.LNil)
	preload := L.NewTable()
	pkg.RawSetString("preload", preload)
	preload.RawSetString("cjson", L.NewFunction(func(L *lua.LState) int { L.Push(st.openCjson(false)); return 1 }))
	preload.RawSetString("cjson.safe", L.NewFunction(func(L *lua.LState) int { L.Push(st.openCjson(true)); return 1 }))
	preload.RawSetString("ngx.re", L.NewFunction(func(L *lua.LState) int { L.Push(st.openNgxRe()); return 1 }))
	preload.RawSetString("ngx.base64", L.NewFunction(func(L *lua.LState) int { L.Push(st.openNgxBase64()); return 1 }))
	preload.RawSetString("ngx.balancer", L.NewFunction(func(L *lua.LState) int { L.Push(st.openNgxBalancer()); return 1 }))
	preload.RawSetString("ngx.semaphore", L.NewFunction(func(L *lua.LState) int { L.Push(st.openSemaphore()); return 1 }))
	preload.RawSetString("ngx.process", L.NewFunction(func(L *lua.LState) int { L.Push(st.openProcess()); return 1 }))
	// lua-resty-string under OpenResty's names and Debian's (resty_string.go).
	for name, open := range st.restyStringModules() {
		fn := L.NewFunction(func(L *lua.LState) int { L.Push(open()); return 1 })
		preload.RawSetString("resty."+name, fn)
		preload.RawSetString("nginx."+name, fn)
	}
	preload.RawSetString("resty.core", L.NewFunction(func(L *lua.LState) int { L.Push(st.openRestyCore()); return 1 }))
	for _, name := range restyCoreParts {
		preload.RawSetString("resty.core."+name, L.NewFunction(func(L *lua.LState) int { L.Push(st.openRestyCorePart(name)); return 1 }))
	}
	preload.RawSetString("ngx.ssl", L.NewFunction(func(L *lua.LState) int { L.Push(st.openNgxSSL()); return 1 }))
	preload.RawSetString("ffi", L.NewFunction(func(L *lua.LState) int { L.Push(st.openFFI()); return 1 }))
	preload.RawSetString("table.new", L.NewFunction(openTableNew))
	preload.RawSetString("table.clear", L.NewFunction(openTableClear))
	loaded := pkg.RawGetString("loaded").(*lua.LTable)

	bit := st.openBit()
	g.RawSetString("bit", bit)
	loaded.RawSetString("bit", bit)
	for _, name := range []string{"string", "table", "math", "os", "io", "coroutine", "package", "debug"} {
		loaded.RawSetString(name, g.RawGetString(name))
	}
	loaded.RawSetString("_G", g)

	ngx := st.openNgx()
	g.RawSetString("ngx", ngx)
	loaded.RawSetString("ngx", ngx)
	// lua-nginx-module loads resty.core when it creates the VM.
	loaded.RawSetString("resty.core", st.openRestyCore())
	for _, name := range restyCoreParts {
		loaded.RawSetString("resty.core."+name, st.openRestyCorePart(name))
	}
}

// guardGlobals installs lua-nginx-module's "_G write guard": writing a
// global from request code logs a warning (and still writes it).
func (st *state) guardGlobals() {
	L := st.L
	mt := L.NewTable()
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		k := L.Get(2)
		if !st.inInit && st.r.req != nil && st.r.phase != PhaseInit && st.r.phase != PhaseInitWorker {
			// The guard's traceback('', 2): from the code that wrote.
			st.logf(ngxlog.Warn, "[lua] _G write guard:12: __newindex(): writing a global Lua variable ('%s') which may lead to race conditions between concurrent requests, so prefer the use of 'local' variables%s", L.ToStringMeta(k).String(), luaTraceback(L, 1))
		}
		L.RawSet(L.CheckTable(1), k, L.Get(3))
		return 0
	}))
	L.SetMetatable(L.G.Global, mt)
}

func (st *state) logf(level ngxlog.Level, format string, args ...any) {
	log := st.rt.opts.Log
	if req := st.r.req; req != nil && req.Log != nil && !st.inInit {
		log = req.Log // with the request's context, as nginx writes it
	}
	if log == nil || st.replaying {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = sprintf(format, args...)
	}
	if st.r.phase == PhaseTimer && st.r.ctx != nil {
		msg += ", context: ngx.timer" // nginx's log context of a timer
	}
	if st.inInit && st.r.phase == PhaseInitWorker {
		msg += ", context: init_worker_by_lua*" // its fake request's
	}
	log(level, msg)
}

func (st *state) osGetenv(L *lua.LState) int {
	name := checkString(L, 1, "getenv")
	if v, ok := st.rt.opts.Env[name]; ok {
		L.Push(lua.LString(v))
	} else if v, ok := os.LookupEnv(name); ok && name == "TZ" {
		L.Push(lua.LString(v)) // nginx keeps TZ in the workers' environment
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

// require loads preloaded modules (cjson, cjson.safe) and plain Lua files
// found through package.path. Files are compiled once per process.
func (st *state) require(L *lua.LState) int {
	name := L.CheckString(1)
	pkg, _ := L.G.Global.RawGetString("package").(*lua.LTable)
	if pkg == nil {
		L.RaiseError("'package' table missing")
	}
	loaded, _ := pkg.RawGetString("loaded").(*lua.LTable)
	if loaded == nil {
		L.RaiseError("'package.loaded' must be a table")
	}
	if v := loaded.RawGetString(name); lua.LVAsBool(v) {
		if v == loadSentinel {
			L.RaiseError("loop or previous error loading module '%s'", name)
		}
		L.Push(v)
		return 1
	}
	var fn lua.LValue
	var msgs strings.Builder
	if preload, ok := pkg.RawGetString("preload").(*lua.LTable); ok {
		fn = preload.RawGetString(name)
	}
	if fn == lua.LNil || fn == nil {
		fn = nil
		msgs.WriteString("\n\tno field package.preload['" + name + "']")
		file := strings.ReplaceAll(name, ".", "/")
		path := lua.LVAsString(pkg.RawGetString("path"))
		for _, pat := range strings.Split(path, ";") {
			if pat == "" {
				continue
			}
			p := strings.ReplaceAll(pat, "?", file)
			if fi, err := os.Stat(p); err != nil || fi.IsDir() {
				msgs.WriteString("\n\tno file '" + p + "'")
				continue
			}
			proto, err := st.rt.modules.load(p)
			if err != nil {
				L.RaiseError("error loading module '%s' from file '%s':\n\t%s", name, p, err.Error())
			}
			fn = L.NewFunctionFromProto(proto)
			break
		}
		if rest, ok := strings.CutPrefix(name, "resty."); ok && fn == nil {
			// Debian installs OpenResty's libraries as nginx.* (package
			// lua-nginx-redis has nginx/redis.lua): resty.redis finds it.
			fn = st.findDebianModule(L, path, rest)
		}
		if fn == nil {
			// LuaJIT's C loaders: the name on package.cpath, then (the
			// all-in-one loader) its first part when it has dots.
			cpath := strings.Split(lua.LVAsString(pkg.RawGetString("cpath")), ";")
			for _, pat := range cpath {
				if pat != "" {
					msgs.WriteString("\n\tno file '" + strings.ReplaceAll(pat, "?", file) + "'")
				}
			}
			if root, _, dotted := strings.Cut(name, "."); dotted {
				for _, pat := range cpath {
					if pat != "" {
						msgs.WriteString("\n\tno file '" + strings.ReplaceAll(pat, "?", root) + "'")
					}
				}
			}
			// luaL_error: the position is the caller's when that is Lua
			// code, none under pcall(require, name).
			restyError(L, 2, "module '%s' not found:%s", name, msgs.String())
		}
	}
	loaded.RawSetString(name, loadSentinel)
	L.Push(fn)
	L.Push(lua.LString(name))
	st.requiring++
	func() {
		defer func() { st.requiring-- }()
		L.Call(1, 1)
	}()
	ret := L.Get(-1)
	L.Pop(1)
	if ret != lua.LNil {
		loaded.RawSetString(name, ret)
	}
	if loaded.RawGetString(name) == loadSentinel {
		loaded.RawSetString(name, lua.LTrue)
	}
	L.Push(loaded.RawGetString(name))
	return 1
}

// xpcall is Lua's, with the handler run as LuaJIT runs it: it cannot
// yield (a wait in it fails, blockFor).
func (st *state) xpcall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	handler := L.CheckFunction(2)
	if !handler.IsG {
		h := handler
		handler = L.NewFunction(func(L *lua.LState) int {
			st.noYield++
			defer func() { st.noYield-- }()
			L.Push(h)
			L.Push(L.Get(1))
			L.Call(1, 1)
			return 1
		})
	}
	top := L.GetTop()
	L.Push(fn)
	if err := L.PCall(0, lua.MultRet, handler); err != nil {
		L.Push(lua.LFalse)
		if aerr, ok := err.(*lua.ApiError); ok {
			L.Push(aerr.Object)
		} else {
			L.Push(lua.LString(err.Error()))
		}
		return 2
	}
	L.Insert(lua.LTrue, top+1)
	return L.GetTop() - top
}

// findDebianModule loads nginx.<rest> from path, or returns nil.
func (st *state) findDebianModule(L *lua.LState, path, rest string) lua.LValue {
	file := "nginx/" + strings.ReplaceAll(rest, ".", "/")
	for _, pat := range strings.Split(path, ";") {
		p := strings.ReplaceAll(pat, "?", file)
		if fi, err := os.Stat(p); pat == "" || err != nil || fi.IsDir() {
			continue
		}
		proto, err := st.rt.modules.load(p)
		if err != nil {
			L.RaiseError("error loading module '%s' from file '%s':\n\t%s", "nginx."+rest, p, err.Error())
		}
		return L.NewFunctionFromProto(proto)
	}
	return nil
}

func (st *state) basePrint(L *lua.LState) int {
	msg := st.logArgs(L, 1, "print")
	st.logf(ngxlog.Notice, "%s", st.logPrefix(L)+msg)
	return 0
}

func isLuaSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// baseToNumber is LuaJIT's tonumber: decimal with exponent, hex with
// optional fraction and binary exponent, inf/nan, surrounding whitespace;
// with a base, strtoul rules after an optional sign.
func baseToNumber(L *lua.LState) int {
	v := L.CheckAny(1)
	base := L.OptInt(2, 10)
	if L.GetTop() < 2 || L.Get(2) == lua.LNil || base == 10 {
		switch x := v.(type) {
		case lua.LNumber:
			L.Push(x)
		case lua.LString:
			if f, ok := parseLuaNumber(string(x)); ok {
				L.Push(lua.LNumber(f))
			} else {
				L.Push(lua.LNil)
			}
		default:
			L.Push(lua.LNil)
		}
		return 1
	}
	if base < 2 || base > 36 {
		L.ArgError(2, "base out of range")
	}
	var s string
	switch x := v.(type) {
	case lua.LString:
		s = string(x)
	case lua.LNumber:
		s = formatNumber(float64(x))
	default:
		L.ArgError(1, "string expected, got "+v.Type().String())
	}
	i := 0
	for i < len(s) && isLuaSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	if base == 16 && i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') {
		i += 2
	}
	start := i
	var n float64
	for ; i < len(s); i++ {
		c := s[i]
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'z':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'Z':
			d = int(c-'A') + 10
		default:
			d = 99
		}
		if d >= base {
			break
		}
		n = n*float64(base) + float64(d)
	}
	if i == start {
		L.Push(lua.LNil)
		return 1
	}
	for i < len(s) && isLuaSpace(s[i]) {
		i++
	}
	if i != len(s) {
		L.Push(lua.LNil)
		return 1
	}
	if n > math.MaxUint64 {
		n = math.MaxUint64
	}
	if neg {
		n = -n
	}
	L.Push(lua.LNumber(n))
	return 1
}

// parseLuaNumber converts a string as LuaJIT's lj_strscan does for
// tonumber and arithmetic on strings.
func parseLuaNumber(s string) (float64, bool) {
	i, j := 0, len(s)
	for i < j && isLuaSpace(s[i]) {
		i++
	}
	for j > i && isLuaSpace(s[j-1]) {
		j--
	}
	s = s[i:j]
	if s == "" {
		return 0, false
	}
	neg := false
	body := s
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	if body == "" {
		return 0, false
	}
	if len(body) > 2 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B') {
		// OpenResty's LuaJIT 2.1 reads binary literals.
		var f float64
		for k := 2; k < len(body); k++ {
			switch body[k] {
			case '0', '1':
				f = f*2 + float64(body[k]-'0')
			default:
				return 0, false
			}
		}
		if neg {
			f = -f
		}
		return f, true
	}
	if len(body) > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		h := body[2:]
		if h == "" {
			return 0, false
		}
		var f float64
		if strings.ContainsAny(h, ".pP") {
			if !strings.ContainsAny(h, "pP") {
				h += "p0"
			}
			v, err := strconv.ParseFloat("0x"+h, 64)
			if err != nil && !isRangeErr(err) {
				return 0, false
			}
			f = v
		} else {
			for k := 0; k < len(h); k++ {
				c := h[k]
				var d int
				switch {
				case c >= '0' && c <= '9':
					d = int(c - '0')
				case c >= 'a' && c <= 'f':
					d = int(c-'a') + 10
				case c >= 'A' && c <= 'F':
					d = int(c-'A') + 10
				default:
					return 0, false
				}
				f = f*16 + float64(d)
			}
		}
		if neg {
			f = -f
		}
		return f, true
	}
	lb := strings.ToLower(body)
	switch lb {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	for k := 0; k < len(body); k++ {
		c := body[k]
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return 0, false
		}
	}
	if body[0] == '+' || body[0] == '-' {
		return 0, false
	}
	f, err := strconv.ParseFloat(body, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// formatNumber formats like LuaJIT's "%.14g".
func formatNumber(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e14 {
		if f == 0 && math.Signbit(f) {
			return "-0"
		}
		return strconv.FormatInt(int64(f), 10)
	}
	return cFormatG(f, 14)
}

// cFormatG is %.<prec>g as LuaJIT prints it: exact ties round away from
// zero (Go rounds them to even).
func cFormatG(f float64, prec int) string {
	if prec == 0 {
		prec = 1
	}
	s := roundedE(f, prec)
	// exponent
	e := strings.LastIndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	if exp < -4 || exp >= prec {
		mant := s[:e]
		if strings.Contains(mant, ".") {
			mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
		}
		es := s[e+1:]
		sign := es[0]
		digits := es[1:]
		if len(digits) < 2 {
			digits = "0" + digits
		}
		return mant + "e" + string(sign) + digits
	}
	out := strconv.FormatFloat(f, 'f', prec-1-exp, 64)
	if strings.Contains(out, ".") {
		out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	}
	return out
}

// baseToString is tostring with LuaJIT's number format and ngx.null
// printed as "userdata: NULL".
func baseToString(L *lua.LState) int {
	v := L.CheckAny(1)
	switch x := v.(type) {
	case lua.LNumber:
		L.Push(lua.LString(formatNumber(float64(x))))
		return 1
	case *lua.LUserData:
		if x == luaNull {
			L.Push(lua.LString("userdata: NULL"))
			return 1
		}
	}
	L.Push(L.ToStringMeta(v))
	return 1
}

// toStr converts a value as lua_tolstring would (numbers with %.14g).
func (st *state) toStr(v lua.LValue) string {
	if n, ok := v.(lua.LNumber); ok {
		return formatNumber(float64(n))
	}
	if v == luaNull {
		return "userdata: NULL"
	}
	return st.L.ToStringMeta(v).String()
}

// strRep is string.rep with Lua 5.2/LuaJIT's separator argument.
func strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	sep := L.OptString(3, "")
	if n <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	if int64(len(s)+len(sep))*int64(n) > 1<<30 {
		L.RaiseError("not enough memory")
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s)
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// baseError is error(): the position prefix names the function at the given
// level only when it is Lua code (pcall(error, "x") gets none, as in Lua).
func baseError(L *lua.LState) int {
	obj := L.CheckAny(1)
	level := L.OptInt(2, 1)
	var s string
	switch x := obj.(type) {
	case lua.LString:
		s = string(x)
	case lua.LNumber: // lua_isstring is true for numbers
		s = formatNumber(float64(x))
	default:
		level = 0
	}
	if level > 0 {
		if dbg, ok := L.GetStack(level); ok {
			if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
				obj = lua.LString(sprintf("%s:%d: %s", dbg.Source, dbg.CurrentLine, s))
			}
		}
	}
	L.Error(obj, 0)
	return 0
}

// roundedE is strconv.FormatFloat(f, 'e', prec-1, 64) with ties rounded
// away from zero.
func roundedE(f float64, prec int) string {
	s := strconv.FormatFloat(f, 'e', prec-1, 64)
	long := strconv.FormatFloat(f, 'e', prec+6, 64) // 7 more digits
	e := strings.IndexByte(long, 'e')
	mant := long[:e]
	digits := strings.Replace(strings.TrimPrefix(mant, "-"), ".", "", 1)
	if len(digits) < prec+7 || digits[prec] != '5' || strings.Trim(digits[prec+1:], "0") != "" {
		return s
	}
	// An exact tie: Go rounded to even; round the magnitude up instead.
	up := f + math.Copysign(math.Abs(f)*math.Pow(10, -float64(prec+2)), f)
	return strconv.FormatFloat(up, 'e', prec-1, 64)
}

// baseCollectGarbage replaces gopher-lua's, which runs a full Go GC on every
// call (a hook calling collectgarbage() per request would stall the
// server). Lua memory is Go memory here: "count" reports the Go heap in KB,
// "collect" runs a Go collection only when cosocket TLS sessions were
// handed out since the last (cosocket_tls.go), the other options do
// nothing.
func baseCollectGarbage(L *lua.LState) int {
	switch L.OptString(1, "collect") {
	case "collect":
		sslSessionRefs.collect() // logs the TLS sessions Lua dropped, as LuaJIT's collection does
	case "count":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		L.Push(lua.LNumber(float64(ms.HeapAlloc) / 1024))
		return 1
	case "step", "isrunning":
		L.Push(lua.LTrue)
		return 1
	}
	L.Push(lua.LNumber(0))
	return 1
}

// debugGetInfo wraps gopher-lua's debug.getinfo to fill the fields as
// LuaJIT does: what "C" (not "G") for Go functions, source "=name" for an
// inline chunk and "@path" for a file, short_src the name or path ("[C]").
// Tail calls still count as levels, unlike LuaJIT.
func debugGetInfo(orig *lua.LFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		top := L.GetTop()
		L.Push(orig)
		for i := 1; i <= top; i++ {
			v := L.Get(i)
			if n, ok := v.(lua.LNumber); ok && i == 1 {
				v = n + 1 // a level: this wrapper is one more
			}
			L.Push(v)
		}
		L.Call(top, 1)
		t, ok := L.Get(-1).(*lua.LTable)
		if !ok {
			return 1
		}
		if t.RawGetString("what") == lua.LString("G") {
			t.RawSetString("what", lua.LString("C"))
			t.RawSetString("source", lua.LString("=[C]"))
			t.RawSetString("short_src", lua.LString("[C]"))
			return 1
		}
		if src, ok := t.RawGetString("source").(lua.LString); ok && src != "" {
			t.RawSetString("short_src", src)
			if strings.HasPrefix(string(src), "/") {
				t.RawSetString("source", "@"+src)
			} else {
				t.RawSetString("source", "="+src)
			}
		}
		return 1
	}
}

// baseLoadString is loadstring(s, chunkname) (and load of a string) with
// LuaJIT's lexical rules and error messages (compileLua): the chunk is
// named chunkname without its "=" or "@", by default [string "..."] with
// the first line of s.
func baseLoadString(L *lua.LState) int {
	src := L.CheckString(1)
	name := L.OptString(2, "")
	switch {
	case strings.HasPrefix(name, "=") || strings.HasPrefix(name, "@"):
		name = name[1:]
	default:
		if name == "" {
			name = src
		}
		name = stringChunkName(name)
	}
	proto, err := compileLua(src, name, false)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(L.NewFunctionFromProto(proto))
	return 1
}

// stringChunkName is Lua's name for a chunk loaded from a string s:
// [string "s"] with s cut at its first line break or past 45 bytes ("...").
func stringChunkName(s string) string {
	const max = 60 - len(`[string "..."]`) - 1 // LUA_IDSIZE 60
	nl := strings.IndexAny(s, "\r\n")
	cut := nl >= 0
	if cut {
		s = s[:nl]
	}
	if len(s) > max {
		s, cut = s[:max], true
	}
	if cut {
		return `[string "` + s + `..."]`
	}
	return `[string "` + s + `"]`
}

// luaTraceback is LuaJIT's debug.traceback("", level) text from the frame
// level up (0 is the running Go function): "\nstack traceback:" and one
// "\n\t<where> in <what>" line per frame, Go functions as LuaJIT's C ones.
func luaTraceback(L *lua.LState, level int) string {
	var b strings.Builder
	b.WriteString("\nstack traceback:")
	for i := level; ; i++ {
		dbg, ok := L.GetStack(i)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sln", dbg, lua.LNil); err != nil {
			break
		}
		if dbg.What == "G" {
			if dbg.Name == "" || dbg.Name[0] == '(' || dbg.Name[0] == '<' {
				b.WriteString("\n\t[C]: ?")
			} else {
				fmt.Fprintf(&b, "\n\t[C]: in function '%s'", dbg.Name)
			}
			continue
		}
		fmt.Fprintf(&b, "\n\t%s:", dbg.Source)
		if dbg.CurrentLine > 0 {
			fmt.Fprintf(&b, "%d:", dbg.CurrentLine)
		}
		switch {
		case dbg.What == "main":
			b.WriteString(" in main chunk")
		case dbg.Name != "" && dbg.Name[0] != '<' && dbg.Name != "?":
			fmt.Fprintf(&b, " in function '%s'", dbg.Name)
		default:
			fmt.Fprintf(&b, " in function <%s:%d>", dbg.Source, dbg.LineDefined)
		}
	}
	return b.String()
}
