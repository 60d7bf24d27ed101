package luahooks

import (
	"bytes"
	"regexp"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// A stand-in for LuaJIT's ffi module. gopher-lua has no FFI, but OpenResty's
// pure-Lua libraries use one small part of it as a scratch buffer: Debian's
// lua-nginx-websocket (resty.websocket.protocol) masks frames with
//
//	local buf = ffi.new(ffi.typeof("char[?]"), n)
//	buf[i] = bxor(...)            -- 0-based, stored modulo 256
//	local s = ffi.string(buf, n)
//
// That part is here: ffi.typeof and ffi.new of byte arrays (char,
// unsigned char, uint8_t, int8_t; [?] with a length argument or [N]),
// indexing and assignment, ffi.string(buf[, len]) and ffi.sizeof. require
// "ffi" succeeds (libraries probe for it), and every other use (cdef, C,
// cast, structs, other types) raises a clear error.

const ffiUnsupported = "LuaJIT's FFI is not available in ngxsockify (gopher-lua), only byte buffers (ffi.new(\"char[?]\", n), ffi.string); use the Go-native modules (resty.string, resty.sha256, resty.aes, ...) or pure Lua"

// ffiArrayType is the declaration of a byte array: element type, then [?]
// or [N].
var ffiArrayType = regexp.MustCompile(`^\s*(char|unsigned\s+char|uint8_t|int8_t)\s*\[\s*(\?|\d+)\s*\]\s*$`)

// ffiCType is a ctype from ffi.typeof: a byte array type.
type ffiCType struct {
	signed bool // char and int8_t read back as -128..127
	size   int  // -1 for [?] (the length is ffi.new's argument)
	decl   string
}

// ffiBuf is a cdata byte array from ffi.new.
type ffiBuf struct {
	b      []byte
	signed bool
}

func (st *state) openFFI() lua.LValue {
	L := st.L
	m := L.NewTable()
	bufMeta := L.NewTable()
	bufMeta.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		b, i := ffiIndex(L)
		if b.signed {
			L.Push(lua.LNumber(int8(b.b[i])))
		} else {
			L.Push(lua.LNumber(b.b[i]))
		}
		return 1
	}))
	bufMeta.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		b, i := ffiIndex(L)
		b.b[i] = byte(int64(L.CheckNumber(3)))
		return 0
	}))
	bufMeta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("cdata<char [" + strconv.Itoa(len(ffiCheckBuf(L, 1).b)) + "]>"))
		return 1
	}))
	typeMeta := L.NewTable()
	typeMeta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("ctype<" + L.CheckUserData(1).Value.(*ffiCType).decl + ">"))
		return 1
	}))
	ctype := func(L *lua.LState, n int) *ffiCType {
		switch v := L.Get(n).(type) {
		case *lua.LUserData:
			if ct, ok := v.Value.(*ffiCType); ok {
				return ct
			}
		case lua.LString:
			if sm := ffiArrayType.FindStringSubmatch(string(v)); sm != nil {
				ct := &ffiCType{signed: sm[1] == "char" || sm[1] == "int8_t", size: -1, decl: string(v)}
				if sm[2] != "?" {
					ct.size, _ = strconv.Atoi(sm[2])
				}
				return ct
			}
			L.RaiseError("ffi: type %q: %s", string(v), ffiUnsupported)
		}
		L.ArgError(n, "C type expected")
		return nil
	}
	fns := map[string]lua.LGFunction{
		"typeof": func(L *lua.LState) int {
			ud := L.NewUserData()
			ud.Value = ctype(L, 1)
			L.SetMetatable(ud, typeMeta)
			L.Push(ud)
			return 1
		},
		"new": func(L *lua.LState) int {
			ct := ctype(L, 1)
			n := ct.size
			if n < 0 {
				n = L.CheckInt(2)
				if n < 0 || n > 1<<30 {
					L.RaiseError("bad argument #2 to 'new' (size of C type is unknown or too large)")
				}
			}
			ud := L.NewUserData()
			ud.Value = &ffiBuf{b: make([]byte, n), signed: ct.signed}
			L.SetMetatable(ud, bufMeta)
			L.Push(ud)
			return 1
		},
		"string": func(L *lua.LState) int {
			b := ffiCheckBuf(L, 1)
			if L.Get(2) == lua.LNil {
				s := b.b
				if i := bytes.IndexByte(s, 0); i >= 0 {
					s = s[:i]
				}
				L.Push(lua.LString(s))
				return 1
			}
			n := L.CheckInt(2)
			if n < 0 || n > len(b.b) {
				L.RaiseError("ffi.string: length %d is outside the buffer (%d bytes)", n, len(b.b))
			}
			L.Push(lua.LString(b.b[:n]))
			return 1
		},
		"sizeof": func(L *lua.LState) int {
			if ud, ok := L.Get(1).(*lua.LUserData); ok {
				if b, ok := ud.Value.(*ffiBuf); ok {
					L.Push(lua.LNumber(len(b.b)))
					return 1
				}
			}
			ct := ctype(L, 1)
			if ct.size < 0 {
				if n, ok := L.Get(2).(lua.LNumber); ok {
					L.Push(n)
					return 1
				}
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LNumber(ct.size))
			return 1
		},
	}
	for name, fn := range fns {
		m.RawSetString(name, L.NewFunction(fn))
	}
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("ffi.%s: %s", L.ToStringMeta(L.Get(2)).String(), ffiUnsupported)
		return 0
	}))
	L.SetMetatable(m, mt)
	return m
}

// baseType is type(): LuaJIT's answer "cdata" for the values that are
// cdata there (ffi buffers, ngx.ssl's chains and keys, a cosocket's SSL
// session from sslhandshake), gopher-lua's for the rest.
func baseType(L *lua.LState) int {
	if L.GetTop() == 0 {
		cError(L, "bad argument #1 to '?' (value expected)") // a fast function in LuaJIT
	}
	v := L.Get(1)
	if ud, ok := v.(*lua.LUserData); ok {
		switch ud.Value.(type) {
		case *ffiBuf, *sslCertChain, *sslPrivKey, *sslSessionRef:
			L.Push(lua.LString("cdata"))
			return 1
		}
	}
	L.Push(lua.LString(v.Type().String()))
	return 1
}

func ffiCheckBuf(L *lua.LState, n int) *ffiBuf {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if b, ok := ud.Value.(*ffiBuf); ok {
			return b
		}
	}
	L.ArgError(n, "cannot convert '"+L.Get(n).Type().String()+"' to 'const char *'")
	return nil
}

// ffiIndex is the buffer and the 0-based index of an __index/__newindex
// call. LuaJIT does not check bounds; an index outside the buffer raises.
func ffiIndex(L *lua.LState) (*ffiBuf, int) {
	b := ffiCheckBuf(L, 1)
	f, ok := L.Get(2).(lua.LNumber)
	if !ok {
		L.RaiseError("ffi: only numeric indexes of a byte buffer are supported; %s", ffiUnsupported)
	}
	i := int(f)
	if i < 0 || i >= len(b.b) {
		L.RaiseError("ffi: index %d is outside the buffer (%d bytes)", i, len(b.b))
	}
	return b, i
}
