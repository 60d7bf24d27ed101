package luahooks

import (
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// openVar builds ngx.var: reads and writes go through Request.Vars.
func (st *state) openVar() *lua.LTable {
	L := st.L
	t := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(st.varIndex))
	mt.RawSetString("__newindex", L.NewFunction(st.varNewIndex))
	L.SetMetatable(t, mt)
	return t
}

func varName(L *lua.LState) string {
	switch k := L.Get(2).(type) {
	case lua.LString:
		// ngx.var.arg_语言: the field name of a UTF-8 identifier comes
		// mangled (luajitSource).
		return unmangleIdent(string(k))
	case lua.LNumber:
		return formatNumber(float64(k))
	default:
		L.RaiseError("bad variable name")
	}
	return ""
}

func (st *state) varIndex(L *lua.LState) int {
	st.noRequestInTimer(L)
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request object found")
	}
	name := ""
	if k, ok := L.Get(2).(lua.LNumber); ok {
		// A number is a capture's index (ngx_http_lua_ffi_var_get's int
		// capture_id): $0, the whole match, and below are nil.
		if int64(k) <= 0 {
			L.Push(lua.LNil)
			return 1
		}
		name = strconv.FormatInt(int64(k), 10)
	} else {
		name = varName(L)
	}
	if name == "request_body" {
		// $request_body is the body read into memory (ngx.req.read_body,
		// lua_need_request_body); nil when none, empty, in a temp file or
		// discarded, "" when read_body followed discard_body (measured).
		if req := st.r.req; req.bodyRead && !req.bodyFile && len(req.body) > 0 || req.readAfterDiscard {
			L.Push(lua.LString(req.body))
			return 1
		}
	}
	if name == "sent_http_content_type" && st.r.sent && st.r.req.RespHeader.Get("Content-Type") == "" && st.r.req.DefaultType != "" && !st.r.req.NoDefaultType {
		// Output has started: nginx sent the default type (our caller
		// adds it only when it writes the response).
		L.Push(lua.LString(st.r.req.DefaultType))
		return 1
	}
	if st.r.req.Vars == nil {
		L.Push(lua.LNil)
		return 1
	}
	if v, ok := st.r.req.Vars.Get(name); ok {
		L.Push(lua.LString(v))
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

func (st *state) varNewIndex(L *lua.LState) int {
	st.noRequestInTimer(L)
	if st.inInit || st.r.req == nil {
		L.RaiseError("no request object found")
	}
	name := varName(L)
	vs := st.r.req.Vars
	var err error
	switch v := L.Get(3).(type) {
	case *lua.LNilType:
		if vs != nil {
			err = vs.Unset(name)
		}
	case lua.LString:
		if vs != nil {
			err = vs.Set(name, string(v))
		}
	case lua.LNumber:
		if vs != nil {
			err = vs.Set(name, formatNumber(float64(v)))
		}
	default:
		L.RaiseError("bad variable value")
	}
	if vs == nil {
		L.RaiseError("variable \"%s\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set $%s '';\" in the config file to define it first", name, name)
	}
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}
