package luahooks

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"net/http"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"os"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// ngxConstants are the integer constants of the ngx table (the log
// levels come from ngxlog).
var ngxConstants = map[string]int{
	"OK": 0, "ERROR": -1, "AGAIN": -2, "DONE": -4, "DECLINED": -5,

	"HTTP_GET": 2, "HTTP_HEAD": 4, "HTTP_POST": 8, "HTTP_PUT": 16, "HTTP_DELETE": 32, "HTTP_MKCOL": 64,
	"HTTP_COPY": 128, "HTTP_MOVE": 256, "HTTP_OPTIONS": 512, "HTTP_PROPFIND": 1024, "HTTP_PROPPATCH": 2048,
	"HTTP_LOCK": 4096, "HTTP_UNLOCK": 8192, "HTTP_PATCH": 16384, "HTTP_TRACE": 32768,

	"HTTP_CONTINUE": 100, "HTTP_SWITCHING_PROTOCOLS": 101, "HTTP_OK": 200, "HTTP_CREATED": 201,
	"HTTP_ACCEPTED": 202, "HTTP_NO_CONTENT": 204, "HTTP_PARTIAL_CONTENT": 206, "HTTP_SPECIAL_RESPONSE": 300,
	"HTTP_MOVED_PERMANENTLY": 301, "HTTP_MOVED_TEMPORARILY": 302, "HTTP_SEE_OTHER": 303,
	"HTTP_NOT_MODIFIED": 304, "HTTP_TEMPORARY_REDIRECT": 307, "HTTP_PERMANENT_REDIRECT": 308,
	"HTTP_BAD_REQUEST": 400, "HTTP_UNAUTHORIZED": 401, "HTTP_PAYMENT_REQUIRED": 402, "HTTP_FORBIDDEN": 403,
	"HTTP_NOT_FOUND": 404, "HTTP_NOT_ALLOWED": 405, "HTTP_NOT_ACCEPTABLE": 406, "HTTP_REQUEST_TIMEOUT": 408,
	"HTTP_CONFLICT": 409, "HTTP_GONE": 410, "HTTP_UPGRADE_REQUIRED": 426, "HTTP_TOO_MANY_REQUESTS": 429,
	"HTTP_CLOSE": 444, "HTTP_ILLEGAL": 451, "HTTP_INTERNAL_SERVER_ERROR": 500, "HTTP_METHOD_NOT_IMPLEMENTED": 501,
	"HTTP_NOT_IMPLEMENTED": 501,
	"HTTP_BAD_GATEWAY":     502, "HTTP_SERVICE_UNAVAILABLE": 503, "HTTP_GATEWAY_TIMEOUT": 504,
	"HTTP_VERSION_NOT_SUPPORTED": 505, "HTTP_INSUFFICIENT_STORAGE": 507,
}

func (st *state) openNgx() *lua.LTable {
	L := st.L
	ngx := L.NewTable()
	for k, v := range ngxConstants {
		ngx.RawSetString(k, lua.LNumber(v))
	}
	ngxlog.Each(func(name string, l ngxlog.Level) { ngx.RawSetString(name, lua.LNumber(l)) })
	ngx.RawSetString("null", luaNull)
	L.SetFuncs(ngx, map[string]lua.LGFunction{
		"exit":            st.ngxExit,
		"say":             st.ngxSay,
		"print":           st.ngxPrint,
		"flush":           st.ngxFlush,
		"eof":             st.ngxEOF,
		"log":             st.ngxLog,
		"redirect":        st.ngxRedirect,
		"exec":            st.ngxExec,
		"send_headers":    st.sendHeaders,
		"sleep":           st.ngxSleep,
		"time":            st.ngxTime,
		"now":             st.ngxNow,
		"today":           st.ngxToday,
		"localtime":       st.ngxLocaltime,
		"utctime":         st.ngxUTCtime,
		"update_time":     st.ngxUpdateTime,
		"http_time":       ngxHTTPTime,
		"cookie_time":     ngxCookieTime,
		"parse_http_time": ngxParseHTTPTime,
		"md5":             ngxMD5,
		"md5_bin":         ngxMD5Bin,
		"sha1_bin":        ngxSHA1Bin,
		"hmac_sha1":       ngxHMACSHA1,
		"crc32_short":     ngxCRC32,
		"crc32_long":      ngxCRC32,
		"encode_base64":   ngxEncodeBase64,
		"decode_base64":   ngxDecodeBase64,
		"escape_uri":      ngxEscapeURI,
		"unescape_uri":    ngxUnescapeURI,
		"encode_args":     st.ngxEncodeArgs,
		"decode_args":     st.ngxDecodeArgs,
		"quote_sql_str":   ngxQuoteSQLStr,
		"get_phase":       st.ngxGetPhase,
		// worker_thread.go
		"run_worker_thread": st.runWorkerThread,
	})
	ngx.RawSetString("worker", st.funcTable(map[string]lua.LGFunction{
		"pid":   func(L *lua.LState) int { L.Push(lua.LNumber(os.Getpid())); return 1 },
		"id":    func(L *lua.LState) int { L.Push(lua.LNumber(0)); return 1 },
		"count": func(L *lua.LState) int { L.Push(lua.LNumber(1)); return 1 },
		// pids (resty.core): the workers' pids, here the one process's.
		"pids": func(L *lua.LState) int {
			if st.inInit || st.r.phase == PhaseInit || st.r.phase == PhaseInitWorker {
				return fail(L, "API disabled in the current context")
			}
			t := L.CreateTable(1, 0)
			t.Append(lua.LNumber(os.Getpid()))
			L.Push(t)
			return 1
		},
		"exiting": func(L *lua.LState) int {
			st.rt.timers.mu.Lock()
			defer st.rt.timers.mu.Unlock()
			L.Push(lua.LBool(st.rt.timers.closed))
			return 1
		},
	}))
	cfg := st.funcTable(map[string]lua.LGFunction{
		"prefix": func(L *lua.LState) int {
			p := st.rt.opts.Prefix
			if p != "" && !strings.HasSuffix(p, "/") {
				p += "/"
			}
			L.Push(lua.LString(p))
			return 1
		},
		"nginx_configure": func(L *lua.LState) int { L.Push(lua.LString(st.rt.opts.ConfigureArgs)); return 1 },
	})
	cfg.RawSetString("nginx_version", lua.LNumber(1022001))
	cfg.RawSetString("ngx_lua_version", lua.LNumber(10023))
	cfg.RawSetString("subsystem", lua.LString("http"))
	cfg.RawSetString("debug", lua.LTrue) // Debian's nginx is built --with-debug
	ngx.RawSetString("config", cfg)
	ngx.RawSetString("location", st.openLocation())
	st.openSocketTCP()
	ngx.RawSetString("socket", st.funcTable(map[string]lua.LGFunction{
		"tcp": st.newSocketTCP, "udp": st.newSocketUDP,
		"stream": st.newSocketTCP, "connect": st.socketConnect,
	}))
	ngx.RawSetString("thread", st.openThread())
	ngx.RawSetString("on_abort", L.NewFunction(st.onAbort))
	ngx.RawSetString("timer", st.openTimer())
	ngx.RawSetString("req", st.openReq())
	ngx.RawSetString("var", st.openVar())
	ngx.RawSetString("header", st.openHeader())
	ngx.RawSetString("resp", st.funcTable(map[string]lua.LGFunction{"get_headers": st.respGetHeaders}))
	ngx.RawSetString("re", st.openRe())
	ngx.RawSetString("shared", st.openShared())
	st.argTable = L.NewTable()
	argMeta := L.NewTable()
	argMeta.RawSetString("__index", L.NewFunction(st.ngxArgIndex))
	argMeta.RawSetString("__newindex", L.NewFunction(st.ngxArgNewIndex))
	L.SetMetatable(st.argTable, argMeta)
	// A field of ngx itself, as lua-nginx-module's (pairs(ngx) lists it);
	// its metatable answers for the phase that runs.
	ngx.RawSetString("arg", st.argTable)

	// Dynamic fields: ngx.status, ngx.ctx, ngx.headers_sent.
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(st.ngxIndex))
	mt.RawSetString("__newindex", L.NewFunction(st.ngxNewIndex))
	L.SetMetatable(ngx, mt)
	st.ngx, st.ngxMeta = ngx, mt
	return ngx
}

func (st *state) funcTable(fns map[string]lua.LGFunction) *lua.LTable {
	t := st.L.NewTable()
	st.L.SetFuncs(t, fns)
	return t
}

func (st *state) ngxIndex(L *lua.LState) int {
	key := L.CheckString(2)
	r := st.r
	switch key {
	case "status", "headers_sent":
		st.noRequestInTimer(L)
	}
	switch key {
	case "status":
		switch {
		case r.req == nil:
			L.Push(lua.LNumber(0))
		case r.req.Status == 0 && r.req.HTTP != nil && r.req.HTTP.ProtoMajor == 0:
			L.Push(lua.LNumber(9)) // lua-nginx-module reads an HTTP/0.9 request's version
		default:
			L.Push(lua.LNumber(r.req.Status))
		}
	case "ctx":
		if r.req == nil || st.inInit {
			L.RaiseError("no request found")
		}
		if r.req.luaCtx == nil {
			r.req.luaCtx = L.NewTable()
		}
		L.Push(r.req.luaCtx)
	case "arg":
		L.Push(st.argTable)
	case "headers_sent":
		L.Push(lua.LBool(r.sent))
	case "is_subrequest":
		L.Push(lua.LBool(r.req != nil && r.req.Subrequest))
	default:
		L.Push(lua.LNil)
	}
	return 1
}

func (st *state) ngxNewIndex(L *lua.LState) int {
	key := L.CheckString(2)
	r := st.r
	if key == "status" {
		st.noRequestInTimer(L)
	}
	switch key {
	case "status":
		if r.req == nil || st.inInit {
			L.RaiseError("no request found")
		}
		if r.sent {
			st.logf(ngxlog.Err, "attempt to set ngx.status after sending out response headers")
			return 0
		}
		v := L.Get(3)
		n, ok := v.(lua.LNumber)
		if !ok {
			if s, isStr := v.(lua.LString); isStr {
				if f, good := parseLuaNumber(string(s)); good {
					n, ok = lua.LNumber(f), true
				}
			}
		}
		if !ok {
			L.RaiseError("bad argument #3 to '__newindex' (number expected, got %s)", v.Type())
		}
		r.req.Status = int(n)
	case "ctx":
		if r.req == nil || st.inInit {
			L.RaiseError("no request found")
		}
		t, ok := L.Get(3).(*lua.LTable)
		if !ok {
			L.RaiseError("ctx should be a table while getting a %s", L.Get(3).Type())
		}
		r.req.luaCtx = t
	default:
		L.RawSet(L.CheckTable(1), L.Get(2), L.Get(3))
	}
	return 0
}

// ngxArgIndex serves ngx.arg[n]: set_by_lua's arguments, or in
// body_filter_by_lua the chunk (1) and whether it is the last (2).
func (st *state) ngxArgIndex(L *lua.LState) int {
	n := L.CheckInt(2)
	if f := st.bodyFilterArg(); f != nil {
		switch n {
		case 1:
			L.Push(lua.LString(f.data))
		case 2:
			L.Push(lua.LBool(f.eof))
		default:
			L.Push(lua.LNil)
		}
		return 1
	}
	if st.r.req != nil && n >= 1 && n <= len(st.r.req.Args) && st.r.req.Args[n-1] != "" {
		L.Push(lua.LString(st.r.req.Args[n-1]))
		return 1
	}
	L.Push(lua.LNil)
	return 1
}

func (st *state) ngxExit(L *lua.LState) int {
	v := L.Get(1)
	n, ok := v.(lua.LNumber)
	if !ok {
		L.RaiseError("bad argument #1 to 'exit' (number expected, got %s)", typeName(v))
	}
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request found")
	}
	switch st.r.phase {
	case PhaseSet, PhaseLog, PhaseBodyFilter:
		st.phaseCheck("exit")
	}
	code := int(n)
	if code == -2 || code == -4 {
		L.RaiseError("bad argument to 'ngx.exit': does not accept NGX_AGAIN or NGX_DONE")
	}
	if st.r.sent && code >= 300 && code != 408 && code != 499 && code != 444 {
		// The status line is out: nginx can only end the response.
		if sent := st.r.req.Status; code != sent && !(sent == 0 && code == http.StatusOK) {
			if sent == 0 {
				sent = http.StatusOK
			}
			st.logf(ngxlog.Err, "attempt to set status %d via ngx.exit after sending out the response status %d", code, sent)
		}
		code = http.StatusOK
	}
	if st.r.phase == PhaseBalancer {
		// lua-nginx-module records the code and the hook goes on
		st.r.exited, st.r.exitCode = true, code
		return 0
	}
	st.exit(code)
	return 0
}

// writeArgs appends ngx.say/ngx.print arguments as lua-nginx-module does:
// strings, numbers, booleans, nil, ngx.null and (nested) array tables.
func (st *state) writeArgs(L *lua.LState, fn string) bool {
	r := st.r
	if r.phase == PhaseExitWorker || st.inInit && r.phase == PhaseInitWorker {
		st.phaseCheck(fn)
	}
	if st.inInit || r.req == nil {
		L.RaiseError("no request found")
	}
	switch r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck(fn)
	}
	if st.headerOnly() {
		L.Push(lua.LNil)
		L.Push(lua.LString("header only"))
		return false
	}
	if r.req.rawSocket {
		L.Push(lua.LNil)
		L.Push(lua.LString("raw request socket acquired"))
		return false
	}
	if r.eof {
		L.Push(lua.LNil)
		L.Push(lua.LString("seen eof"))
		return false
	}
	// ngx_http_lua_ngx_echo checks every argument before it writes one:
	// an argument error leaves the output as it was.
	start, done := r.body.Len(), false
	defer func() {
		if !done {
			r.body.Truncate(start)
		}
	}()
	top := L.GetTop()
	for i := 1; i <= top; i++ {
		st.writeValue(L, L.Get(i), i, fn, 0)
	}
	done = true
	return true
}

func (st *state) writeValue(L *lua.LState, v lua.LValue, argn int, fn string, depth int) {
	b := &st.r.body
	switch x := v.(type) {
	case lua.LString:
		b.WriteString(string(x))
	case lua.LNumber:
		// lua-nginx-module prints numbers that fit a C int as integers
		// ("0" for -0), others with %.14g ("1e+14").
		if f := float64(x); f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
			b.WriteString(strconv.FormatInt(int64(f), 10))
		} else {
			b.WriteString(formatNumber(f))
		}
	case lua.LBool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case *lua.LNilType:
		b.WriteString("nil")
	case *lua.LUserData:
		if x == luaNull {
			b.WriteString("null")
			return
		}
		cArgError(L, argn, fn, "string, number, boolean, nil, ngx.null, or array table expected, but got userdata")
	case *lua.LTable:
		if depth > 100 {
			cArgError(L, argn, fn, "table too deep")
		}
		// Like ngx_http_lua_calc_strlen_in_table: every key must be a
		// positive integer; the elements 1..the largest key are written,
		// holes as "nil".
		n := 0
		bad := false
		x.ForEach(func(k, _ lua.LValue) {
			kn, ok := k.(lua.LNumber)
			if !ok || float64(kn) != math.Floor(float64(kn)) || kn < 1 {
				bad = true
			} else if int(kn) > n {
				n = int(kn)
			}
		})
		if bad {
			cArgError(L, argn, fn, "non-array table found")
		}
		for i := 1; i <= n; i++ {
			st.writeValue(L, x.RawGetInt(i), argn, fn, depth+1)
		}
	default:
		cArgError(L, argn, fn, "string, number, boolean, nil, ngx.null, or array table expected, but got "+v.Type().String())
	}
}

func (st *state) ngxSay(L *lua.LState) int {
	if !st.writeArgs(L, "say") {
		return 2
	}
	st.r.body.WriteByte('\n')
	if !st.markSent() || !st.writeNow() {
		return fail(L, "nginx output filter error")
	}
	st.logHTTP10Buffering()
	L.Push(lua.LNumber(1))
	return 1
}

func (st *state) ngxPrint(L *lua.LState) int {
	if !st.writeArgs(L, "print") {
		return 2
	}
	if !st.markSent() || !st.writeNow() {
		return fail(L, "nginx output filter error")
	}
	st.logHTTP10Buffering()
	L.Push(lua.LNumber(1))
	return 1
}

// logHTTP10Buffering logs, as lua-nginx-module does at debug level for
// each output it holds, that lua_http10_buffering keeps the output of an
// HTTP/1.0 request back to the end.
func (st *state) logHTTP10Buffering() {
	if req := st.r.req; req != nil && !req.headersOut && req.http10Buffering() {
		st.logf(ngxlog.Debug, "lua buffering output bufs for the HTTP 1.0 request")
	}
}

func (st *state) ngxFlush(L *lua.LState) int { return st.endOutput(L, false) }

func (st *state) ngxEOF(L *lua.LState) int { return st.endOutput(L, true) }

// headerOnly is nginx's r->header_only: the headers of a HEAD request
// went out, so output functions answer nil, "header only".
func (st *state) headerOnly() bool {
	return st.r.sent && st.r.req.HTTP != nil && st.r.req.HTTP.Method == http.MethodHead
}

// endOutput is ngx.flush (eof false) and ngx.eof (eof true): output counts
// as sent; after ngx.eof both answer nil, "seen eof".
func (st *state) endOutput(L *lua.LState, eof bool) int {
	if st.r.phase == PhaseExitWorker {
		st.phaseCheck("flush")
	}
	if st.r.req == nil || st.inInit {
		L.RaiseError("no request found")
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("flush") // a timer, log_by_lua, ...: raises
	}
	if st.headerOnly() {
		L.Push(lua.LNil)
		L.Push(lua.LString("header only"))
		return 2
	}
	if st.r.req.rawSocket {
		return fail(L, "raw request socket acquired")
	}
	if st.r.eof {
		L.Push(lua.LNil)
		L.Push(lua.LString("seen eof"))
		return 2
	}
	if req := st.r.req; !eof && st.r.sent && !req.headersOut && req.http10Buffering() {
		// lua_http10_buffering holds the output: flush is a no-op.
		st.logf(ngxlog.Debug, "lua http 1.0 buffering makes ngx.flush() a no-op")
		L.Push(lua.LNil)
		L.Push(lua.LString("buffering"))
		return 2
	}
	if !eof {
		// lua-nginx-module: nothing goes out before the headers did, nor
		// without wait before a body byte (send_headers, print("")).
		seenBody := st.r.body.Len() > 0 || st.r.req.Streamed > 0
		if !st.r.sent || !seenBody && !lua.LVAsBool(L.Get(1)) {
			L.Push(lua.LNil)
			L.Push(lua.LString("nothing to flush"))
			return 2
		}
	}
	if !st.markSent() {
		return fail(L, "nginx output filter error")
	}
	st.r.eof = st.r.eof || eof
	st.flushOutput()
	if req := st.r.req; eof && st.postpone() < postponeOutput && req.Flush != nil && req.headersOut {
		// nginx's write filter sends the last buffer at once: its write
		// fails when the client has gone
		if !st.writeNow() {
			return fail(L, "nginx output filter error")
		}
		if req.Finish != nil {
			req.Finish()
			req.headPushed = true
		}
		if st.writeFailed() {
			return fail(L, "nginx output filter error")
		}
	}
	if req := st.r.req; !eof && lua.LVAsBool(L.Get(1)) && req.FlushDelayed != nil {
		// nginx waits for the write event then (ngxsockify's Flush waited
		// already), saying so at debug level
		if buffered, delayed := req.FlushDelayed(); delayed {
			st.logf(ngxlog.Debug, "lua flush requires waiting: buffered 0x%x, delayed:1", buffered)
		}
	}
	if !eof && lua.LVAsBool(L.Get(1)) {
		st.r.now = time.Now() // flush(true) yielded: nginx's cached time moved on
	}
	L.Push(lua.LNumber(1))
	return 1
}

// logArgs concatenates ngx.log/print arguments with no separator. An
// argument error counts from the first message argument: ngx.log removes
// its level before log_wrapper checks the rest.
func (st *state) logArgs(L *lua.LState, from int, fn string) string {
	var b strings.Builder
	top := L.GetTop()
	for i := from; i <= top; i++ {
		switch x := L.Get(i).(type) {
		case lua.LString:
			b.WriteString(string(x))
		case lua.LNumber:
			b.WriteString(formatNumber(float64(x)))
		case lua.LBool:
			if x {
				b.WriteString("true")
			} else {
				b.WriteString("false")
			}
		case *lua.LNilType:
			b.WriteString("nil")
		case *lua.LUserData:
			if x == luaNull {
				b.WriteString("null")
				continue
			}
			cArgError(L, i-from+1, fn, "string, number, boolean, or nil expected, got userdata")
		case *lua.LTable:
			if L.GetMetaField(x, "__tostring") != lua.LNil {
				b.WriteString(L.ToStringMeta(x).String())
				continue
			}
			cArgError(L, i-from+1, fn, "expected table to have __tostring metamethod")
		default:
			cArgError(L, i-from+1, fn, "string, number, boolean, or nil expected, got "+x.Type().String())
		}
	}
	return b.String()
}

// logPrefix is "[lua] <short_src>:<line>: [<func>(): ]" for the caller.
func (st *state) logPrefix(L *lua.LState) string {
	dbg, ok := L.GetStack(1)
	if !ok {
		return "[lua] "
	}
	if _, err := L.GetInfo("Sln", dbg, lua.LNil); err != nil {
		return "[lua] "
	}
	src := dbg.Source
	if i := strings.LastIndexAny(src, `/\`); i >= 0 {
		src = src[i+1:] // nginx logs the file's base name
	}
	if dbg.CurrentLine < 0 {
		return "[lua] " + src + ": "
	}
	// gopher-lua names a tail-called or unnamed function "<source:line>";
	// LuaJIT has no name (namewhat "") for those, and nginx writes none.
	if dbg.Name != "" && dbg.Name != "?" && dbg.Name != "main chunk" && dbg.Name[0] != '<' {
		return sprintf("[lua] %s:%d: %s(): ", src, dbg.CurrentLine, dbg.Name)
	}
	return sprintf("[lua] %s:%d: ", src, dbg.CurrentLine)
}

func (st *state) ngxLog(L *lua.LState) int {
	v := L.Get(1)
	lv, ok := v.(lua.LNumber)
	if !ok {
		cArgError(L, 1, "log", "number expected, got "+typeName(v))
	}
	level := ngxlog.Level(lv)
	if level < ngxlog.Stderr || level > ngxlog.Debug {
		cArgError(L, 1, "log", sprintf("bad log level: %d", int(lv)))
	}
	msg := st.logArgs(L, 2, "log")
	st.logf(level, "%s", st.logPrefix(L)+msg)
	return 0
}

func (st *state) ngxRedirect(L *lua.LState) int {
	uri := L.CheckString(1)
	code := http.StatusFound
	if L.GetTop() >= 2 {
		code = L.CheckInt(2) // an explicit nil is an error, as in lua-nginx-module
	}
	switch code {
	case 301, 302, 303, 307, 308:
	default:
		cError(L, "only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed")
	}
	r := st.r
	if st.inInit || r.req == nil {
		L.RaiseError("no request found")
	}
	switch r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("redirect")
	}
	if r.sent {
		cError(L, "attempt to call ngx.redirect after sending out the headers")
	}
	for i := 0; i < len(uri); i++ {
		// Control bytes but the tab, and DEL, could split the header.
		if c := uri[i]; c < 0x20 && c != '\t' || c == 0x7f {
			cError(L, "unsafe byte \"0x%02x\" in redirect uri \"%s\"", c, escapeLog(uri))
		}
	}
	if r.req.RespHeader == nil {
		r.req.RespHeader = http.Header{}
	}
	r.req.RespHeader["Location"] = []string{uri}
	if r.req.NoteHeader != nil {
		r.req.NoteHeader("Location", true) // an entry of the list, even relative
	}
	r.redirect = true
	st.exit(code)
	return 0
}

// ngxExec is ngx.exec(uri [, args]): an internal redirect once the run
// ends. Arguments in uri come first, then args (a string, number or table
// encoded like ngx.encode_args).
func (st *state) ngxExec(L *lua.LState) int {
	if n := L.GetTop(); n != 1 && n != 2 {
		cError(L, "expecting one or two arguments, but got %d", n)
	}
	r := st.r
	if st.inInit || r.req == nil {
		L.RaiseError("no request object found")
	}
	uri := L.CheckString(1)
	if uri == "" {
		cError(L, "The uri argument is empty")
	}
	switch r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("exec")
	}
	path, args, _ := strings.Cut(uri, "?")
	if unsafeURI(path) {
		cError(L, "unsafe uri")
	}
	var user string
	if a := L.Get(2); L.GetTop() == 2 && a != lua.LNil {
		var ok bool
		if user, ok = st.argsString(L, a); !ok {
			cArgError(L, 2, "exec", "string, number, or table expected, but got "+typeName(a))
		}
	}
	if user != "" {
		if args == "" {
			args = user
		} else {
			args += "&" + user
		}
	}
	if r.sent {
		cError(L, "attempt to call ngx.exec after sending out response headers")
	}
	r.exec, r.execURI, r.execArgs = true, path, args
	st.exit(0)
	return 0
}

// unsafeURI is ngx_http_parse_unsafe_uri's refusal of paths that climb:
// a "..". segment (also the whole path), or a NUL byte.
func unsafeURI(p string) bool {
	if strings.IndexByte(p, 0) >= 0 {
		return true
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// escapeLog is lua-nginx-module's escaping of a value for a log line:
// controls, '"', '\\', DEL and bytes >= 0x80 as \xHH.
func escapeLog(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			fmt.Fprintf(&b, "\\x%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (st *state) ngxSleep(L *lua.LState) int {
	n, ok := L.Get(1).(lua.LNumber)
	if !ok {
		cArgError(L, 1, "sleep", "number expected, got "+typeName(L.Get(1)))
	}
	secs := float64(n)
	if secs < 0 {
		cError(L, "invalid sleep duration \"%s\"", formatNumber(secs))
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent, PhaseTimer, PhaseSSLCert:
	default:
		st.phaseCheck("sleep")
	}
	if st.r.ctx == nil {
		return 0
	}
	// Sleeping is waiting, not running: the time limit pauses, and other
	// light threads run.
	st.logf(ngxlog.Debug, "lua ready to sleep for %d ms", int64(secs*1000))
	ctx := st.r.ctx
	ctx.ownChannel() // a channel that cancellation closes
	gone := ctx.parent.Done()
	expired := false
	_, aborted := st.blockFor(func(done <-chan struct{}) error {
		t := time.NewTimer(time.Duration(secs * float64(time.Second)))
		defer t.Stop()
		select {
		case <-t.C:
			expired = true
		case <-done:
			// killed, or the run ended: the next instruction raises
		case <-gone:
			// The client is gone: end the run.
			ctx.cancel(ctx.parent.Err())
		}
		return nil
	})
	if aborted {
		st.logf(ngxlog.Debug, "lua clean up the timer for pending ngx.sleep")
		st.abortThread()
	}
	if h := st.r.req.HTTP; h != nil && expired {
		st.logf(ngxlog.Debug, "lua sleep timer expired: \"%s?%s\"", h.URL.Path, h.URL.RawQuery)
	}
	st.r.now = time.Now()
	return 0
}

func (st *state) ngxTime(L *lua.LState) int {
	L.Push(lua.LNumber(st.r.now.Unix()))
	return 1
}

func (st *state) ngxNow(L *lua.LState) int {
	L.Push(lua.LNumber(float64(st.r.now.UnixMilli()) / 1000))
	return 1
}

func (st *state) ngxToday(L *lua.LState) int {
	L.Push(lua.LString(st.r.now.Format("2006-01-02")))
	return 1
}

func (st *state) ngxLocaltime(L *lua.LState) int {
	L.Push(lua.LString(st.r.now.Format("2006-01-02 15:04:05")))
	return 1
}

func (st *state) ngxUTCtime(L *lua.LState) int {
	L.Push(lua.LString(st.r.now.UTC().Format("2006-01-02 15:04:05")))
	return 1
}

func (st *state) ngxUpdateTime(L *lua.LState) int {
	st.r.now = time.Now()
	return 0
}

func ngxHTTPTime(L *lua.LState) int {
	sec := int64(L.CheckNumber(1))
	L.Push(lua.LString(time.Unix(sec, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	return 1
}

func ngxCookieTime(L *lua.LState) int {
	sec := int64(L.CheckNumber(1))
	t := time.Unix(sec, 0).UTC()
	if t.Year() > 2037 {
		L.Push(lua.LString(t.Format("Mon, 02-Jan-2006 15:04:05 GMT")))
	} else {
		L.Push(lua.LString(t.Format("Mon, 02-Jan-06 15:04:05 GMT")))
	}
	return 1
}

func ngxParseHTTPTime(L *lua.LState) int {
	s := L.CheckString(1)
	t, err := http.ParseTime(s)
	if err != nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(t.Unix()))
	return 1
}

// strArg converts a hashing/encoding argument like the resty.core FFI
// wrappers do: nil and false mean "", other non-strings go through
// tostring.
func strArg(L *lua.LState, n int) string {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return formatNumber(float64(v))
	case *lua.LNilType:
		return ""
	case lua.LBool:
		if !v {
			return ""
		}
		return "true"
	default:
		return L.ToStringMeta(v).String()
	}
}

func ngxMD5(L *lua.LState) int {
	sum := md5.Sum([]byte(strArg(L, 1)))
	L.Push(lua.LString(hex.EncodeToString(sum[:])))
	return 1
}

func ngxMD5Bin(L *lua.LState) int {
	sum := md5.Sum([]byte(strArg(L, 1)))
	L.Push(lua.LString(sum[:]))
	return 1
}

func ngxSHA1Bin(L *lua.LState) int {
	sum := sha1.Sum([]byte(strArg(L, 1)))
	L.Push(lua.LString(sum[:]))
	return 1
}

func ngxHMACSHA1(L *lua.LState) int {
	m := hmac.New(sha1.New, []byte(strArg(L, 1)))
	m.Write([]byte(strArg(L, 2)))
	L.Push(lua.LString(m.Sum(nil)))
	return 1
}

func ngxCRC32(L *lua.LState) int {
	L.Push(lua.LNumber(crc32.ChecksumIEEE([]byte(strArg(L, 1)))))
	return 1
}

func ngxEncodeBase64(L *lua.LState) int {
	s := strArg(L, 1)
	enc := base64.StdEncoding
	if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
		// resty.core: any true value but true itself is an error.
		switch b := L.Get(2).(type) {
		case lua.LBool:
			if b {
				enc = base64.RawStdEncoding
			}
		default:
			restyError(L, 2, "bad no_padding: boolean expected, got %s", typeName(b))
		}
	}
	L.Push(lua.LString(enc.EncodeToString([]byte(s))))
	return 1
}

// ngxDecodeBase64 follows ngx_decode_base64: the input ends at the first
// '=', any other byte outside the alphabet is an error, and a length of 1
// modulo 4 is an error.
func ngxDecodeBase64(L *lua.LState) int {
	v, ok := L.Get(1).(lua.LString)
	if !ok { // resty.core: type(s) ~= "string", numbers too
		restyError(L, 2, "string argument only")
	}
	out, ok := decodeBase64Nginx(string(v), false)
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(out))
	return 1
}

// decodeBase64Nginx follows ngx_decode_base64(url): the input ends at the
// first '=', any other byte outside the alphabet is an error, and a length
// of 1 modulo 4 is an error; trailing bits are ignored.
func decodeBase64Nginx(s string, url bool) ([]byte, bool) {
	n := 0
	for ; n < len(s); n++ {
		c := s[n]
		if c == '=' {
			break
		}
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if url {
			ok = ok || c == '-' || c == '_'
		} else {
			ok = ok || c == '+' || c == '/'
		}
		if !ok {
			return nil, false
		}
	}
	if n%4 == 1 {
		return nil, false
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	out, err := enc.DecodeString(s[:n])
	if err != nil {
		return nil, false
	}
	return out, true
}

// escapeURIKeep reports the bytes ngx.escape_uri leaves as they are.
func escapeURIKeep(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-._~!*'()", c) >= 0
}

func escapeURI(s string) string {
	return vars.Escape(s, func(c byte) bool { return !escapeURIKeep(c) })
}

// escapeTypes are the byte sets nginx's ngx_escape_uri escapes for the
// types ngx.escape_uri(s, type) takes (0 NGX_ESCAPE_URI ... 6
// NGX_ESCAPE_MAIL_AUTH; 2, the URI component, is the default), measured on
// nginx 1.22: every type escapes the controls and the space.
var escapeTypes = func() [7]func(byte) bool {
	ctl := func(c byte) bool { return c <= ' ' }
	high := func(c byte) bool { return c >= 0x7f }
	in := func(set string) func(byte) bool { return func(c byte) bool { return strings.IndexByte(set, c) >= 0 } }
	uri, args, html, refresh, mem := in("#%?"), in("#%?+"), in("\"#%'"), in("\"'"), in("%")
	return [7]func(byte) bool{
		func(c byte) bool { return ctl(c) || high(c) || uri(c) },
		func(c byte) bool { return ctl(c) || high(c) || args(c) },
		func(c byte) bool { return !escapeURIKeep(c) },
		func(c byte) bool { return ctl(c) || high(c) || html(c) },
		func(c byte) bool { return ctl(c) || high(c) || refresh(c) },
		func(c byte) bool { return ctl(c) || mem(c) },
		func(c byte) bool { return ctl(c) || mem(c) },
	}
}()

// ngxEscapeURI is ngx.escape_uri(s [, type]); type must be a number in
// 0..6 (resty.core's checks and messages).
func ngxEscapeURI(L *lua.LState) int {
	s := strArg(L, 1)
	t := 2
	switch v := L.Get(2).(type) {
	case *lua.LNilType:
	case lua.LNumber:
		t = int(v)
		if t < 0 || t >= len(escapeTypes) {
			restyError(L, 3, "\"type\" %s out of range", formatNumber(float64(v)))
		}
	default:
		restyError(L, 3, "\"type\" is not a number")
	}
	L.Push(lua.LString(vars.Escape(s, escapeTypes[t])))
	return 1
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescapeURI decodes %XX (invalid sequences kept) and '+' as a space.
func unescapeURI(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0:
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ngxUnescapeURI(L *lua.LState) int {
	L.Push(lua.LString(unescapeURI(strArg(L, 1))))
	return 1
}

func ngxQuoteSQLStr(L *lua.LState) int {
	s := strArg(L, 1)
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString("\\0")
		case '\b':
			b.WriteString("\\b")
		case '\n':
			b.WriteString("\\n")
		case '\r':
			b.WriteString("\\r")
		case '\t':
			b.WriteString("\\t")
		case 26:
			b.WriteString("\\Z")
		case '\\', '\'', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	L.Push(lua.LString(b.String()))
	return 1
}

func (st *state) ngxGetPhase(L *lua.LState) int {
	if st.inInit {
		switch st.r.phase {
		case PhaseInitWorker:
			L.Push(lua.LString("init_worker"))
		case PhaseExitWorker:
			L.Push(lua.LString("exit_worker"))
		default:
			L.Push(lua.LString("init"))
		}
		return 1
	}
	names := map[Phase]string{PhaseSet: "set", PhaseRewrite: "rewrite", PhaseAccess: "access",
		PhaseContent: "content", PhaseHeaderFilter: "header_filter", PhaseLog: "log",
		PhaseInit: "init", PhaseInitWorker: "init_worker", PhaseTimer: "timer", PhaseBodyFilter: "body_filter",
		PhaseSSLCert: "ssl_cert", PhaseBalancer: "balancer", PhaseServerRewrite: "server_rewrite",
		PhaseExitWorker: "exit_worker"}
	L.Push(lua.LString(names[st.r.phase]))
	return 1
}
