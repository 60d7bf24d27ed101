package luahooks

import (
	"net/http"
	"ngxsockify/ngxlog"
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

func respHeaderName(L *lua.LState) string {
	k, ok := L.Get(2).(lua.LString)
	if !ok {
		L.RaiseError("bad argument #2 to '__index' (string expected, got %s)", L.Get(2).Type())
	}
	return http.CanonicalHeaderKey(strings.ReplaceAll(string(k), "_", "-"))
}

func (st *state) headerIndex(L *lua.LState) int {
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request found")
	}
	name := respHeaderName(L)
	var vals []string
	for k, v := range st.r.req.RespHeader {
		if strings.EqualFold(k, name) {
			vals = append(vals, v...)
		}
	}
	if len(vals) == 0 && name == "Content-Type" && st.r.sent && st.r.req.DefaultType != "" {
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
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request found")
	}
	name := respHeaderName(L)
	if st.r.sent {
		st.logf(ngxlog.Err, "attempt to set ngx.header.HEADER after sending out response headers")
		return 0
	}
	vals, clear := headerValues(L, L.Get(3), "__newindex")
	req := st.r.req
	if req.RespHeader == nil {
		req.RespHeader = http.Header{}
	}
	for k := range req.RespHeader {
		if strings.EqualFold(k, name) {
			delete(req.RespHeader, k)
		}
	}
	if !clear {
		if name != "Set-Cookie" && len(vals) > 1 && isSingleHeader(name) {
			vals = vals[len(vals)-1:]
		}
		req.RespHeader[name] = vals
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
