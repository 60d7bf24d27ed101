package luahooks

import (
	"fmt"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// tobit normalises a Lua number to a signed 32-bit integer as LuaJIT's
// bit.tobit does (modulo 2^32).
func tobit(f float64) int32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	f = math.Mod(math.Trunc(f), 4294967296)
	if f < 0 {
		f += 4294967296
	}
	return int32(uint32(f))
}

func bitArg(L *lua.LState, n int) int32 {
	v := L.Get(n)
	switch x := v.(type) {
	case lua.LNumber:
		return tobit(float64(x))
	case lua.LString:
		if f, ok := parseLuaNumber(string(x)); ok {
			return tobit(f)
		}
	}
	L.ArgError(n, "number expected, got "+typeName(v))
	return 0
}

func (st *state) openBit() *lua.LTable {
	fold := func(op func(a, b int32) int32) lua.LGFunction {
		return func(L *lua.LState) int {
			r := bitArg(L, 1)
			for i := 2; i <= L.GetTop(); i++ {
				r = op(r, bitArg(L, i))
			}
			L.Push(lua.LNumber(r))
			return 1
		}
	}
	shift := func(op func(a int32, n uint) int32) lua.LGFunction {
		return func(L *lua.LState) int {
			a := bitArg(L, 1)
			n := uint(bitArg(L, 2)) & 31
			L.Push(lua.LNumber(op(a, n)))
			return 1
		}
	}
	return st.funcTable(map[string]lua.LGFunction{
		"tobit":   func(L *lua.LState) int { L.Push(lua.LNumber(bitArg(L, 1))); return 1 },
		"bnot":    func(L *lua.LState) int { L.Push(lua.LNumber(^bitArg(L, 1))); return 1 },
		"band":    fold(func(a, b int32) int32 { return a & b }),
		"bor":     fold(func(a, b int32) int32 { return a | b }),
		"bxor":    fold(func(a, b int32) int32 { return a ^ b }),
		"lshift":  shift(func(a int32, n uint) int32 { return int32(uint32(a) << n) }),
		"rshift":  shift(func(a int32, n uint) int32 { return int32(uint32(a) >> n) }),
		"arshift": shift(func(a int32, n uint) int32 { return a >> n }),
		"rol": shift(func(a int32, n uint) int32 {
			u := uint32(a)
			return int32(u<<n | u>>((32-n)&31))
		}),
		"ror": shift(func(a int32, n uint) int32 {
			u := uint32(a)
			return int32(u>>n | u<<((32-n)&31))
		}),
		"bswap": func(L *lua.LState) int {
			u := uint32(bitArg(L, 1))
			u = u>>24 | (u>>8)&0xff00 | (u<<8)&0xff0000 | u<<24
			L.Push(lua.LNumber(int32(u)))
			return 1
		},
		"tohex": func(L *lua.LState) int {
			x := uint32(bitArg(L, 1))
			n := 8
			if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
				n = int(bitArg(L, 2))
			}
			format := "%0*x"
			if n < 0 {
				n = -n
				format = "%0*X"
			}
			if n > 8 {
				n = 8
			}
			s := fmt.Sprintf(format, 8, x)
			L.Push(lua.LString(s[8-n:]))
			return 1
		},
	})
}
