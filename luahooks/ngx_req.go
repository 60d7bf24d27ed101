package luahooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

func (st *state) openReq() *lua.LTable {
	fns := map[string]lua.LGFunction{
		"get_uri_args":  st.reqGetURIArgs,
		"set_uri_args":  st.reqSetURIArgs,
		"get_headers":   st.reqGetHeaders,
		"set_header":    st.reqSetHeader,
		"clear_header":  st.reqClearHeader,
		"get_method":    st.reqGetMethod,
		"set_method":    st.reqSetMethod,
		"http_version":  st.reqHTTPVersion,
		"start_time":    st.reqStartTime,
		"read_body":     st.reqReadBody,
		"discard_body":  st.reqDiscardBody,
		"get_body_data": st.reqGetBodyData,
		"get_body_file": st.reqGetBodyFile,
		"get_post_args": st.reqGetPostArgs,
		"set_body_data": st.reqSetBodyData,
		"is_internal":   func(L *lua.LState) int { L.Push(lua.LBool(st.request(L).Internal)); return 1 },
		"raw_header":    st.reqRawHeader,
		"socket":        st.reqSocket,
		"init_body":     st.reqInitBody,
		"append_body":   st.reqAppendBody,
		"finish_body":   st.reqFinishBody,
		"set_body_file": st.reqSetBodyFile,
		"set_uri":       st.reqSetURI,
	}
	// In a timer these raise "API disabled in the current context";
	// read_body and socket name the timer, as in lua-nginx-module.
	st.timerGuard(fns, "read_body", "socket", "start_time", "is_internal")
	return st.funcTable(fns)
}

// request returns the current request or raises "no request found".
func (st *state) request(L *lua.LState) *Request {
	if st.inInit || st.r.req == nil || st.r.req.HTTP == nil {
		L.RaiseError("no request found")
	}
	return st.r.req
}

// currentArgs is $args: the variable store wins (set $args, set_uri_args),
// else the request's raw query.
func (req *Request) currentArgs() string {
	if req.Vars != nil {
		if v, ok := req.Vars.Get("args"); ok {
			return v
		}
	}
	if req.HTTP != nil && req.HTTP.URL != nil {
		return req.HTTP.URL.RawQuery
	}
	return ""
}

// parseArgs is lua-nginx-module's argument parser: split on '&', key and
// value split at the first '=', both unescaped ('+' is a space), a key
// without '=' is true, empty keys are dropped, repeated keys become arrays.
// max <= 0 means unlimited. It reports whether args were truncated.
func parseArgs(L *lua.LState, s string, max int) (*lua.LTable, bool) {
	t := L.CreateTable(0, strings.Count(s, "&")+1)
	n := 0
	for len(s) > 0 {
		var seg string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			seg, s = s[:i], s[i+1:]
		} else {
			seg, s = s, ""
		}
		if seg == "" {
			continue
		}
		var key string
		var val lua.LValue
		if i := strings.IndexByte(seg, '='); i >= 0 {
			key = unescapeURI(seg[:i])
			val = lua.LString(unescapeURI(seg[i+1:]))
		} else {
			key = unescapeURI(seg)
			val = lua.LTrue
		}
		if key == "" {
			continue
		}
		if max > 0 && n >= max {
			return t, true
		}
		n++
		addValue(L, t, key, val)
	}
	return t, false
}

// parseArgsLimited is ngx_http_lua_parse_args, the C parser of
// ngx.decode_args and ngx.req.get_post_args: like parseArgs, but every
// piece a '&' ends counts toward max, empty ones and empty keys too, and
// reaching max there is "truncated"; the piece after the last '&' never
// is.
func parseArgsLimited(L *lua.LState, s string, max int) (*lua.LTable, bool) {
	t := L.CreateTable(0, strings.Count(s, "&")+1)
	count := 0
	for {
		seg, rest, more := strings.Cut(s, "&")
		if seg != "" {
			key, val := seg, lua.LValue(lua.LTrue)
			if k, v, ok := strings.Cut(seg, "="); ok {
				key, val = k, lua.LString(unescapeURI(v))
			}
			if key = unescapeURI(key); key != "" {
				addValue(L, t, key, val)
			}
		}
		if !more {
			return t, false
		}
		if count++; max > 0 && count == max {
			return t, true
		}
		s = rest
	}
}

func argsResult(L *lua.LState, t *lua.LTable, truncated bool) int {
	L.Push(t)
	if truncated {
		L.Push(lua.LString("truncated"))
		return 2
	}
	return 1
}

func (st *state) reqGetURIArgs(L *lua.LState) int {
	req := st.request(L)
	max := L.OptInt(1, 100)
	args := req.currentArgs()
	t, _ := parseArgs(L, args, max)
	// resty.core counts the '&'-separated pieces, empty ones and empty
	// keys included, before it parses: more than max is "truncated",
	// while the table gets up to max pairs with a key.
	n := 0
	if args != "" {
		n = strings.Count(args, "&") + 1
	}
	trunc := max > 0 && n > max
	if trunc {
		st.logf(ngxlog.Debug, "lua hit query args limit %d", max)
	}
	return argsResult(L, t, trunc)
}

func (st *state) ngxDecodeArgs(L *lua.LState) int {
	s := L.CheckString(1)
	max := L.OptInt(2, 100)
	t, trunc := parseArgsLimited(L, s, max)
	if trunc {
		st.logf(ngxlog.Debug, "lua hit query args limit %d", max)
	}
	return argsResult(L, t, trunc)
}

// encodeArgs is ngx.encode_args: keys in table order (sorted here for a
// stable result), true -> bare key, false skipped, arrays repeat the key.
func (st *state) encodeArgs(L *lua.LState, t *lua.LTable) string {
	type kv struct {
		k string
		v lua.LValue
	}
	var items []kv
	t.ForEach(func(k, v lua.LValue) {
		var ks string
		switch x := k.(type) {
		case lua.LString:
			ks = string(x)
		case lua.LNumber:
			ks = formatNumber(float64(x))
		default:
			cError(L, "attempt to use a non-string key in the \"args\" option table")
		}
		items = append(items, kv{ks, v})
	})
	sort.SliceStable(items, func(i, j int) bool { return items[i].k < items[j].k })
	var parts []string
	var add func(k string, v lua.LValue, inArray bool)
	add = func(k string, v lua.LValue, inArray bool) {
		ek := escapeURI(k)
		switch x := v.(type) {
		case lua.LString:
			parts = append(parts, ek+"="+escapeURI(string(x)))
		case lua.LNumber:
			parts = append(parts, ek+"="+escapeURI(formatNumber(float64(x))))
		case lua.LBool:
			if x {
				parts = append(parts, ek)
			}
		case *lua.LTable:
			if inArray {
				cError(L, "attempt to use table as query arg value")
			}
			for i := 1; i <= x.Len(); i++ {
				add(k, x.RawGetInt(i), true)
			}
		default:
			cError(L, "attempt to use %s as query arg value", v.Type())
		}
	}
	for _, it := range items {
		add(it.k, it.v, false)
	}
	return strings.Join(parts, "&")
}

func (st *state) ngxEncodeArgs(L *lua.LState) int {
	t, ok := L.Get(1).(*lua.LTable)
	if !ok {
		cArgError(L, 1, "encode_args", "table expected, got "+typeName(L.Get(1)))
	}
	L.Push(lua.LString(st.encodeArgs(L, t)))
	return 1
}

func (st *state) reqSetURIArgs(L *lua.LState) int {
	req := st.request(L)
	v := L.Get(1)
	s, ok := st.argsString(L, v)
	if !ok {
		L.ArgError(1, "string, number, or table expected, got "+typeName(v))
	}
	if _, str := v.(lua.LString); str {
		s = escapeArgsCtrl(s)
	}
	st.setArgsVar(L, req, s)
	return 0
}

// escapeArgsCtrl is ngx_http_lua_escape_args: a query string given to
// ngx.req.set_uri_args as a string keeps its bytes except the control
// bytes, the space and DEL, which become %XX (bytes of 0x80 and above stay,
// so UTF-8 names still match $arg_...). ngx.exec's string args are not
// escaped.
func escapeArgsCtrl(s string) string {
	return vars.Escape(s, func(c byte) bool { return c <= ' ' || c == 0x7f })
}

// argsString is a query given as a string, a number or a table of args
// (ngx.req.set_uri_args, ngx.exec); ok is false for any other type.
func (st *state) argsString(L *lua.LState, v lua.LValue) (s string, ok bool) {
	switch v := v.(type) {
	case lua.LString:
		return string(v), true
	case lua.LNumber:
		return formatNumber(float64(v)), true
	case *lua.LTable:
		return st.encodeArgs(L, v), true
	}
	return "", false
}

func (st *state) setArgsVar(L *lua.LState, req *Request, s string) {
	if req.HTTP.URL != nil {
		u := *req.HTTP.URL
		u.RawQuery = s
		req.HTTP.URL = &u
	}
	if req.Vars != nil {
		if err := req.Vars.Set("args", s); err != nil {
			L.RaiseError("%s", err.Error())
		}
	}
}

// reqSetURI is ngx.req.set_uri(uri, jump?, binary?): $uri becomes uri
// (through Request.SetURI) and the request counts as internal; with jump,
// allowed in rewrite_by_lua only, the hook ends there and the caller
// searches the locations again (Outcome.URIJump). Unless binary, control
// bytes are refused as nginx refuses them.
func (st *state) reqSetURI(L *lua.LState) int {
	if n := L.GetTop(); n < 1 || n > 3 {
		cError(L, "expecting 1, 2 or 3 arguments but seen %d", n)
	}
	req := st.request(L)
	uri := L.CheckString(1)
	if uri == "" {
		cError(L, "attempt to use zero-length uri")
	}
	binary := false
	if L.GetTop() >= 3 {
		binary = cCheckBool(L, 3, "set_uri")
	}
	if !binary {
		for i := 0; i < len(uri); i++ {
			if c := uri[i]; c < 0x20 && c != '\t' || c == 0x7f {
				cError(L, "unsafe byte \"0x%02x\" in uri \"%s\" (maybe you want to set the 'binary' argument?)", c, escapeLog(uri))
			}
		}
	}
	jump := false
	if L.GetTop() >= 2 {
		jump = cCheckBool(L, 2, "set_uri")
		if jump {
			st.phaseCheck("set_uri", PhaseRewrite, PhaseServerRewrite)
		}
	}
	if req.SetURI != nil {
		req.SetURI(uri)
	} else if req.HTTP.URL != nil {
		u := *req.HTTP.URL
		u.Path, u.RawPath = uri, ""
		req.HTTP.URL = &u
	}
	req.Internal = true
	if jump {
		st.r.jump = true
		st.exit(0)
	}
	return 0
}

// cCheckBool is luaL_checktype(L, n, LUA_TBOOLEAN) in a C function.
func cCheckBool(L *lua.LState, n int, fname string) bool {
	b, ok := L.Get(n).(lua.LBool)
	if !ok {
		cArgError(L, n, fname, "boolean expected, got "+typeName(L.Get(n)))
	}
	return bool(b)
}

// headerList returns the request headers as (name, value) pairs in the
// order of nginx's header list: the client's lines in their order and
// spelling when the raw head is known (else Host ("host") first, then the
// names sorted), with the values as they are now, then the values hooks
// put at the end (order, nil when none did).
func headerList(r *http.Request, order *HeaderOrder) [][2]string {
	var out [][2]string
	done := map[string]bool{}
	// the order and spelling the client sent (proxy/http1 keeps the raw
	// head), with the values as they are now (ngx.req.set_header)
	if raw := http1.RawHeader(r); raw != nil {
		lines := strings.Split(string(raw), "\n")
		seen := map[string]int{} // lines of each name so far
		spelled := map[string]string{}
		var names []string
		for _, l := range lines[1:] {
			name, _, ok := strings.Cut(l, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				continue
			}
			canon := http.CanonicalHeaderKey(name)
			i := seen[canon]
			seen[canon]++
			if i == 0 {
				spelled[canon] = name
				names = append(names, canon)
			}
			switch {
			case canon == "Host":
				if i == 0 && r.Host != "" {
					out = append(out, [2]string{name, r.Host})
				}
			case canon == "Transfer-Encoding" && len(r.TransferEncoding) > 0 && r.Header.Get("Transfer-Encoding") == "":
				if i == 0 {
					out = append(out, [2]string{name, strings.Join(r.TransferEncoding, ", ")})
				}
			case i < order.InPlace(r.Header, canon):
				out = append(out, [2]string{name, r.Header[canon][i]})
			}
		}
		for _, canon := range names {
			done[canon] = true
			if canon == "Host" || canon == "Transfer-Encoding" {
				continue
			}
			in := order.InPlace(r.Header, canon)
			for _, v := range r.Header[canon][min(seen[canon], in):in] {
				out = append(out, [2]string{spelled[canon], v})
			}
		}
	} else if r.Host != "" {
		out = append(out, [2]string{"host", r.Host})
		done["Host"] = true
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !done[http.CanonicalHeaderKey(k)] && !strings.EqualFold(k, "Host") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k][:order.InPlace(r.Header, k)] {
			out = append(out, [2]string{k, v})
		}
	}
	if len(r.TransferEncoding) > 0 && r.Header.Get("Transfer-Encoding") == "" && !done["Transfer-Encoding"] {
		out = append(out, [2]string{"Transfer-Encoding", strings.Join(r.TransferEncoding, ", ")})
	}
	if order != nil {
		next := map[string]int{} // each name's next value at the end
		for _, l := range order.Appended {
			vals := r.Header[l.Key]
			i := order.InPlace(r.Header, l.Key) + next[l.Key]
			next[l.Key]++
			if i < len(vals) {
				out = append(out, [2]string{l.Name, vals[i]})
			}
		}
	}
	return out
}

func (st *state) reqGetHeaders(L *lua.LState) int {
	req := st.request(L)
	max := L.OptInt(1, 100)
	raw := L.OptBool(2, false)
	t := L.NewTable()
	n := 0
	truncated := false
	list := headerList(req.HTTP, req.HeaderOrder)
	if max > 0 && len(list) > max {
		st.logf(ngxlog.Debug, "lua exceeding request header limit %d > %d", len(list), max)
	}
	for _, h := range list {
		if max > 0 && n >= max {
			truncated = true
			break
		}
		n++
		name := h[0]
		if !raw {
			name = strings.ToLower(name)
		}
		addValue(L, t, name, lua.LString(h[1]))
	}
	if !raw {
		L.SetMetatable(t, st.headersMeta(L))
	}
	return argsResult(L, t, truncated)
}

// addValue adds one value to a get_headers() or get_uri_args() table: the
// value itself the first time, a list of the values once the name repeats.
func addValue(L *lua.LState, t *lua.LTable, name string, val lua.LValue) {
	switch old := t.RawGetString(name).(type) {
	case *lua.LNilType:
		t.RawSetString(name, val)
	case *lua.LTable:
		old.Append(val)
	default:
		arr := L.CreateTable(2, 0)
		arr.Append(old)
		arr.Append(val)
		t.RawSetString(name, arr)
	}
}

// headersMeta lets get_headers() results be read as h["User-Agent"] or
// h.user_agent.
func (st *state) headersMeta(L *lua.LState) *lua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		k, ok := L.Get(2).(lua.LString)
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		key := strings.ReplaceAll(strings.ToLower(string(k)), "_", "-")
		L.Push(t.RawGetString(key))
		return 1
	}))
	return mt
}

func headerValues(L *lua.LState, v lua.LValue, fn string) ([]string, bool) {
	switch x := v.(type) {
	case *lua.LNilType:
		return nil, true
	case lua.LString:
		return []string{string(x)}, false
	case lua.LNumber:
		return []string{formatNumber(float64(x))}, false
	case lua.LBool:
		if x {
			return []string{"true"}, false
		}
		return []string{"false"}, false
	case *lua.LTable:
		var vals []string
		for i := 1; i <= x.Len(); i++ {
			e := x.RawGetInt(i)
			switch y := e.(type) {
			case lua.LString:
				vals = append(vals, string(y))
			case lua.LNumber:
				vals = append(vals, formatNumber(float64(y)))
			default:
				L.RaiseError("attempt to set bad value in table for %s", fn)
			}
		}
		return vals, len(vals) == 0
	}
	L.RaiseError("bad argument #2 to '%s' (string, number, table or nil expected, got %s)", fn, v.Type())
	return nil, false
}

func (st *state) reqSetHeader(L *lua.LState) int {
	req := st.request(L)
	name := escapeHeader(L.CheckString(1), true)
	vals, clear := headerValues(L, L.Get(2), "set_header")
	if !req.http09() {
		req.setHeader(name, escapeHeaderValues(vals), clear)
	}
	return 0
}

func (st *state) reqClearHeader(L *lua.LState) int {
	req := st.request(L)
	if !req.http09() {
		req.setHeader(L.CheckString(1), nil, true)
	}
	return 0
}

// http09 reports an HTTP/0.9 request, which has no headers:
// lua-nginx-module's set_header and clear_header leave it alone.
func (req *Request) http09() bool {
	return req.HTTP.Proto == "HTTP/0.9"
}

// setHeader is set_header and clear_header (clear): the values of name
// become vals, at the places in the header list nginx gives them
// (HeaderOrder).
func (req *Request) setHeader(name string, vals []string, clear bool) {
	r := req.HTTP
	key := textproto.CanonicalMIMEHeaderKey(name)
	if strings.EqualFold(name, "Host") {
		if clear {
			r.Host = ""
		} else {
			r.Host = vals[0]
		}
		return
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if len(vals) == 1 && vals[0] == "" {
		clear = true // an empty value removes the name's lines, as nginx's helper
	}
	if clear {
		vals = nil
	}
	if req.HeaderOrder == nil {
		req.HeaderOrder = &HeaderOrder{}
	}
	req.HeaderOrder.Set(r.Header, key, name, vals)
	for k := range r.Header {
		if strings.EqualFold(k, name) {
			delete(r.Header, k)
		}
	}
	if !clear {
		r.Header[key] = vals
	}
}

var methodNames = map[int]string{2: "GET", 4: "HEAD", 8: "POST", 16: "PUT", 32: "DELETE", 64: "MKCOL",
	128: "COPY", 256: "MOVE", 512: "OPTIONS", 1024: "PROPFIND", 2048: "PROPPATCH", 4096: "LOCK",
	8192: "UNLOCK", 16384: "PATCH", 32768: "TRACE"}

func (st *state) reqGetMethod(L *lua.LState) int {
	req := st.request(L)
	m := req.HTTP.Method
	if m == "" {
		m = "GET"
	}
	L.Push(lua.LString(m))
	return 1
}

func (st *state) reqSetMethod(L *lua.LState) int {
	req := st.request(L)
	m, ok := methodNames[L.CheckInt(1)]
	if !ok {
		L.RaiseError("unsupported HTTP method: %d", L.CheckInt(1))
	}
	req.HTTP.Method = m
	return 0
}

func (st *state) reqHTTPVersion(L *lua.LState) int {
	req := st.request(L)
	v := float64(req.HTTP.ProtoMajor) + float64(req.HTTP.ProtoMinor)/10
	switch {
	case req.http09():
		v = 0.9
	case v == 0:
		v = 1.1 // a request built without a version
	}
	L.Push(lua.LNumber(v))
	return 1
}

func (st *state) reqStartTime(L *lua.LState) int {
	req := st.request(L)
	L.Push(lua.LNumber(float64(req.start.UnixMilli()) / 1000))
	return 1
}

func (st *state) reqRawHeader(L *lua.LState) int {
	req := st.request(L)
	noReq := L.OptBool(1, false)
	hr := req.HTTP
	if req.MainHTTP != nil {
		hr = req.MainHTTP
	}
	if hr.ProtoMajor == 2 {
		cError(L, "http2 requests not supported yet") // lua-nginx-module 0.10.23's answer
	}
	if raw := http1.RawHeader(hr); raw != nil {
		// the bytes as received (proxy/http1)
		if noReq {
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				raw = raw[i+1:]
			}
		}
		L.Push(lua.LString(raw))
		return 1
	}
	var b strings.Builder
	if !noReq {
		b.WriteString(hr.Method + " " + hr.RequestURI + " " + hr.Proto + "\r\n")
	}
	for _, h := range headerList(hr, nil) { // the head as received: no hook's order
		name := h[0]
		if name == "host" {
			name = "Host"
		}
		b.WriteString(name + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	L.Push(lua.LString(b.String()))
	return 1
}

// reqDiscardBody is ngx.req.discard_body(): the body is dropped (net/http
// drains what the client still sends), so a later read_body finds none and
// get_body_data answers nil.
func (st *state) reqDiscardBody(L *lua.LState) int {
	req := st.request(L)
	if !req.bodyRead {
		req.bodyRead, req.body, req.bodyDiscarded = true, nil, true
		if req.HTTP != nil && req.HTTP.Body != nil {
			req.HTTP.Body = http.NoBody
		}
	}
	return 0
}

// reqReadBody reads the whole request body into memory and puts it back
// as the request's Body, so a proxy can still send it upstream.
func (st *state) reqReadBody(L *lua.LState) int {
	if st.r.phase == PhaseTimer { // a timer has a fake request: its phase decides
		st.phaseCheck("read_body")
	}
	req := st.request(L)
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("read_body")
	}
	req.readAfterDiscard = req.bodyDiscarded
	// Reading waits on the client: other light threads run meanwhile; the
	// read ends when the thread is killed or the request ends (a body
	// that can be cut short: HTTP/1's).
	var status int
	var err error
	req.readingBody = true
	st.block(func(done <-chan struct{}) error {
		if ctl, ok := bodyControl(req); ok {
			defer onDone(done, ctl.CancelRead)()
		}
		status, err = req.readBody()
		return nil
	})
	req.readingBody = false
	if status != 0 {
		out := bodyOutcome(status, err)
		st.r.bodyErr = &out
		st.exit(status)
	}
	return 0
}

// bodyControl is req's body's read control, if it has one.
func bodyControl(req *Request) (bodyReadControl, bool) {
	if req.HTTP == nil {
		return nil, false
	}
	ctl, ok := req.HTTP.Body.(bodyReadControl)
	return ctl, ok
}

// bodyOutcome is the answer to a body that could not be read: the 413
// page, or a closed connection when reading failed (400, which the client
// does not wait for). Err is nginx's log line, for the caller to log with
// the request's context.
func bodyOutcome(status int, err error) Outcome {
	action := Close
	if status == http.StatusRequestEntityTooLarge {
		action = ErrorPage
	}
	return Outcome{Action: action, Status: status, Err: err}
}

// ReadBody reads the request body as lua_need_request_body on does before
// each rewrite, access and content chunk; reading twice does nothing. It
// returns 0, or the status nginx answers with and the error to log: 413
// when a chunked body passes req.ClientMaxBodySize, 400 when reading
// fails. The next Run of a rewrite, access or content chunk then returns
// that answer without running the chunk (nginx does not run the handler).
func (rt *Runtime) ReadBody(req *Request) (int, error) {
	status, err := req.readBody()
	if status != 0 {
		out := bodyOutcome(status, err)
		out.Err = nil // the caller logs err
		req.bodyErr = &out
	}
	return status, err
}

// readBody reads the body into memory and puts it back as HTTP.Body. A
// chunked body is counted as it is read and refused past
// ClientMaxBodySize, as nginx's chunked body filter does; a body of
// declared length was checked against the limit when the location was
// picked. The message reports the bytes before the read that crossed the
// limit plus that read's size; nginx reports the preceding chunks plus the
// crossing chunk's size, which net/http does not show.
func (req *Request) readBody() (int, error) {
	if req.bodyRead || req.HTTP == nil {
		return 0, nil
	}
	req.bodyRead = true
	body := req.HTTP.Body
	if body == nil || body == http.NoBody {
		return 0, nil
	}
	// Unknown length means chunked here: net/http gives NoBody for
	// "Content-Length: 0".
	chunked := req.HTTP.ContentLength <= 0
	limit := req.ClientMaxBodySize
	// A body of declared length is read into a buffer of its size, a
	// chunked one with at least 4k free for each read.
	size := int64(16 << 10)
	if !chunked {
		size = min(req.HTTP.ContentLength+1, 1<<20) // +1: room to see EOF
	}
	data := make([]byte, 0, size)
	for {
		if free := cap(data) - len(data); free == 0 || chunked && free < 4<<10 {
			data = append(data[:cap(data)], 0)[:len(data)] // grow
		}
		n, err := body.Read(data[len(data):cap(data)])
		if chunked && limit > 0 && int64(len(data)+n) > limit {
			return http.StatusRequestEntityTooLarge,
				fmt.Errorf("client intended to send too large chunked body: %d+%d bytes", len(data), n)
		}
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return http.StatusBadRequest, ErrClientClosed
		}
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return http.StatusRequestTimeout, ErrClientTimedOut
		}
		if err != nil {
			return http.StatusBadRequest, err
		}
	}
	buf := req.ClientBodyBufferSize
	if buf <= 0 {
		buf = defaultClientBodyBufferSize
	}
	if !chunked && req.HTTP.ProtoMajor != 2 {
		// nginx sizes the buffer of a body of declared length up to a
		// quarter larger than client_body_buffer_size (on HTTP/1.x: an
		// HTTP/2 body's buffer is the declared length at most)
		buf += buf >> 2
	}
	req.body = data
	req.bodyFile = int64(len(data)) > buf || req.BodyInFileOnly && len(data) > 0
	req.HTTP.Body = io.NopCloser(bytes.NewReader(data))
	return 0, nil
}

func (st *state) reqGetBodyData(L *lua.LState) int {
	req := st.request(L)
	if !req.bodyRead || req.bodyFile || len(req.body) == 0 {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(req.body))
	return 1
}

func (st *state) reqGetPostArgs(L *lua.LState) int {
	req := st.request(L)
	max := L.OptInt(1, 100)
	if !req.bodyRead {
		cError(L, "no request body found; maybe you should turn on lua_need_request_body?")
	}
	if req.bodyFile {
		L.Push(lua.LNil)
		L.Push(lua.LString("request body in temp file not supported"))
		return 2
	}
	t, trunc := parseArgsLimited(L, string(req.body), max)
	if trunc {
		st.logf(ngxlog.Debug, "lua hit query args limit %d", max)
	}
	return argsResult(L, t, trunc)
}

func (st *state) reqSetBodyData(L *lua.LState) int {
	req := st.request(L)
	if !req.bodyRead {
		cError(L, "request body not read yet")
	}
	req.setBody([]byte(L.CheckString(1)), false)
	return 0
}
