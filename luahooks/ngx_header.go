package luahooks

import (
	"fmt"
	"net/http"
	"ngxsockify/ngxlog"
	"slices"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// openHeader builds ngx.header over Request.RespHeader: names are
// case-insensitive and '_' means '-'; several values read back as a table.
func (st *state) openHeader() *lua.LTable {
	L := st.L
	t := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(st.headerIndex))
	mt.RawSetString("__newindex", L.NewFunction(st.headerNewIndex))
	L.SetMetatable(t, mt)
	return t
}

// respHeaderName is the header name ngx.header was indexed with: '_'
// turned into '-' (unless lua_transform_underscores_in_response_headers
// is off), escaped, and spelled as written, as lua-nginx-module keeps it,
// except the headers the server itself reads (serverHeaders), kept in Go's
// canonical form. canon is the canonical form, for comparisons.
func respHeaderName(L *lua.LState, keepUnderscores bool) (key, canon string) {
	var name string
	switch k := L.Get(2).(type) {
	case lua.LString:
		name = string(k)
	case lua.LNumber: // ngx.header[32]: lua_tolstring turns it into "32"
		name = formatNumber(float64(k))
	default:
		L.RaiseError("bad argument #2 to '__index' (string expected, got %s)", L.Get(2).Type())
	}
	if !keepUnderscores {
		name = strings.ReplaceAll(name, "_", "-")
	}
	name = escapeHeader(name, true)
	canon = http.CanonicalHeaderKey(name)
	if serverHeaders[canon] {
		return canon, canon
	}
	return name, canon
}

// serverHeaders are the response headers nginx writes itself or that the
// server reads back (caching, ranges, redirects): a Lua hook's spelling
// of them is not kept.
var serverHeaders = map[string]bool{
	"Server": true, "Date": true, "Content-Length": true, "Content-Type": true, "Location": true,
	"Last-Modified": true, "Etag": true, "Expires": true, "Content-Encoding": true,
	"Content-Range": true, "Accept-Ranges": true, "Set-Cookie": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Www-Authenticate": true,
}

// escapeHeader is lua-nginx-module's ngx_http_lua_copy_escaped_header:
// header names and values set from Lua cannot split the header block.
// Names escape controls, the space, separators ("(),/:;<=>?@[\]{}) and
// bytes >= 0x7f; values escape controls but the tab, and DEL; both as %XX.
func escapeHeader(s string, name bool) string {
	esc := func(c byte) bool {
		if c < 0x20 && (name || c != '\t') || c == 0x7f {
			return true
		}
		if name {
			return c > 0x7f || strings.IndexByte(" \"(),/:;<=>?@[\\]{}", c) >= 0
		}
		return false
	}
	i := 0
	for i < len(s) && !esc(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; esc(c) {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeHeaderValues escapes each value (escapeHeader).
func escapeHeaderValues(vals []string) []string {
	for i, v := range vals {
		vals[i] = escapeHeader(v, false)
	}
	return vals
}

func (st *state) headerIndex(L *lua.LState) int {
	st.noRequestInTimer(L)
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request found")
	}
	_, name := respHeaderName(L, st.r.req.KeepUnderscores)
	var vals []string
	for k, v := range st.r.req.RespHeader {
		if strings.EqualFold(k, name) {
			vals = append(vals, v...)
		}
	}
	if len(vals) == 0 && name == "Content-Type" && st.r.sent && st.r.req.DefaultType != "" && !st.r.req.NoDefaultType {
		vals = []string{st.r.req.DefaultType}
	}
	switch len(vals) {
	case 0:
		L.Push(lua.LNil)
	case 1:
		L.Push(lua.LString(vals[0]))
	default:
		t := L.CreateTable(len(vals), 0)
		for _, v := range vals {
			t.Append(lua.LString(v))
		}
		L.Push(t)
	}
	return 1
}

func (st *state) headerNewIndex(L *lua.LState) int {
	st.noRequestInTimer(L)
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request found")
	}
	key, name := respHeaderName(L, st.r.req.KeepUnderscores)
	if st.r.sent {
		st.logf(ngxlog.Err, "attempt to set ngx.header.HEADER after sending out response headers")
		return 0
	}
	vals, clear := headerValues(L, L.Get(3), "__newindex")
	vals = escapeHeaderValues(vals)
	// An empty value is an entry nginx does not send: alone it clears;
	// first in a table it clears the name's entries, and the others are
	// new ones, last in the list.
	renewed := len(vals) > 1 && vals[0] == ""
	if slices.Contains(vals, "") {
		vals = slices.DeleteFunc(vals, func(v string) bool { return v == "" })
		clear = len(vals) == 0
	}
	if name == "Content-Length" {
		// nginx parses it (ngx_atoof): anything but digits fails.
		for _, v := range vals {
			if v != "" && strings.Trim(v, "0123456789") != "" {
				L.RaiseError("failed to set header")
			}
		}
		if len(vals) == 1 && vals[0] == "" {
			clear = true
		}
	}
	req := st.r.req
	if req.RespHeader == nil {
		req.RespHeader = http.Header{}
	}
	for k := range req.RespHeader {
		if strings.EqualFold(k, name) {
			delete(req.RespHeader, k)
		}
	}
	if name == "Content-Type" {
		clear = clear || len(vals) == 1 && vals[0] == "" // "" clears it too
		req.NoDefaultType = clear
	}
	if !clear {
		if name != "Set-Cookie" && len(vals) > 1 && isSingleHeader(name) {
			vals = vals[len(vals)-1:]
		}
		req.RespHeader[key] = vals
	} else if name == "Server" || name == "Date" {
		// the list's entry, cleared, stands for nginx's own: none is sent
		req.RespHeader[key] = nil
	}
	if req.NoteHeader != nil {
		if renewed {
			req.NoteHeader(name, false)
		}
		req.NoteHeader(name, !clear)
	}
	return 0
}

// isSingleHeader lists the built-in headers nginx keeps only once.
func isSingleHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Location", "Last-Modified", "Content-Encoding", "Server", "Date", "Etag", "Expires":
		return true
	}
	return false
}

// respGetHeaders is ngx.resp.get_headers([max [, raw]]): the response
// headers set so far, names lowercased unless raw (the table then reads
// h.content_type too), several values as a table, and the headers nginx
// keeps apart: content-type once set (or sent), content-length when set,
// connection, transfer-encoding for a chunked response already sent. Past
// max (default 100; 0 is no limit) it also returns "truncated".
func (st *state) respGetHeaders(L *lua.LState) int {
	max := 100
	if L.GetTop() >= 1 && L.Get(1) != lua.LNil {
		max = L.CheckInt(1)
	}
	raw := L.GetTop() >= 2 && lua.LVAsBool(L.Get(2))
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request object found")
	}
	req := st.r.req
	t := L.NewTable()
	if !raw {
		L.SetMetatable(t, st.headersMeta(L))
	}
	var names []string
	for k := range req.RespHeader {
		names = append(names, k)
	}
	sort.Strings(names)
	extra := 0
	ctype := req.RespHeader.Get("Content-Type")
	if ctype == "" && st.r.sent && !req.NoDefaultType {
		ctype = req.DefaultType
	}
	if ctype != "" {
		extra++
		t.RawSetString("content-type", lua.LString(ctype))
	}
	if cl := req.RespHeader.Get("Content-Length"); cl != "" {
		extra++
		t.RawSetString("content-length", lua.LString(cl))
	}
	extra++
	conn := "keep-alive"
	if h := req.HTTP; h != nil && (h.Close || !h.ProtoAtLeast(1, 1) && !strings.EqualFold(h.Header.Get("Connection"), "keep-alive")) {
		conn = "close"
	}
	t.RawSetString("connection", lua.LString(conn))
	if st.r.sent && req.HTTP != nil && req.HTTP.ProtoAtLeast(1, 1) && req.RespHeader.Get("Content-Length") == "" {
		extra++
		t.RawSetString("transfer-encoding", lua.LString("chunked"))
	}
	count := 0
	for _, k := range names {
		if k == "Content-Type" || k == "Content-Length" {
			continue
		}
		count += len(req.RespHeader[k])
	}
	truncated := false
	if max > 0 && count+extra > max {
		st.logf(ngxlog.Debug, "lua exceeding response header limit %d > %d", count+extra, max)
		truncated = true
		count = max - extra
	}
	done := false
	for _, k := range names {
		if k == "Content-Type" || k == "Content-Length" {
			continue
		}
		name := k
		if !raw {
			name = strings.ToLower(k)
		}
		for _, v := range req.RespHeader[k] {
			if done {
				break
			}
			// nginx stores a header, then stops when the count left
			// reaches 0: one header goes in even when the extras
			// alone exceed max.
			count--
			done = count <= 0
			addValue(L, t, name, lua.LString(v))
		}
	}
	return argsResult(L, t, truncated)
}

// sendHeaders is ngx.send_headers(): the headers count as sent from now on
// (ngx.status and ngx.header writes are refused, ngx.exit can no longer
// change the status); output is still buffered until the run ends.
func (st *state) sendHeaders(L *lua.LState) int {
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request found")
	}
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("send_headers")
	}
	if !st.markSent() {
		return fail(L, "nginx output filter error")
	}
	L.Push(lua.LNumber(1))
	return 1
}

// markSent records that the response headers are out (ngx.say, ngx.print,
// ngx.flush, ngx.eof, ngx.send_headers): ngx.status then reads the status
// sent, 200 unless set. It reports false when sending them now failed
// (Request.SendHeaders).
// http10Buffering reports whether lua_http10_buffering holds the output
// to the end: an HTTP/1.0 request, buffering on, no Content-Length set.
func (req *Request) http10Buffering() bool {
	return req.HTTP != nil && !req.HTTP.ProtoAtLeast(1, 1) && req.RespHeader.Get("Content-Length") == "" && !req.NoHTTP10Buffering
}

func (st *state) markSent() bool {
	st.r.sent = true
	req := st.r.req
	if req == nil {
		return true
	}
	if req.Status == 0 {
		req.Status = http.StatusOK
	}
	// The first time, the caller sends them (Request.SendHeaders), except
	// on HTTP/1.0 without a Content-Length the hook set:
	// lua_http10_buffering holds everything to the end.
	if req.SendHeaders == nil || req.headersOut {
		return true
	}
	if req.http10Buffering() {
		return true
	}
	req.headersOut = true
	return req.SendHeaders()
}
