package luahooks

import (
	"fmt"
	"regexp"

	lua "github.com/yuin/gopher-lua"
)

// gopher-lua words its runtime errors differently from LuaJIT. These
// rewrite the common ones into LuaJIT's anonymous form ("attempt to index a
// nil value"); namedMessage (errnames.go) first gives calls and indexings
// the name of the value where LuaJIT would ("local 't'").
var (
	reIndexErr  = regexp.MustCompile(`attempt to index a non-table object\((\w+)\) with key '(?:[^'\n]*)'`)
	reConcatErr = regexp.MustCompile(`cannot perform concat operation between (\w+) and (\w+)`)
	reArithErr  = regexp.MustCompile(`cannot perform (?:add|sub|mul|div|mod|pow|unm) operation between (\w+) and (\w+)`)
	reCallErr   = regexp.MustCompile(`attempt to call a non-function object`)
	reUnmErr    = regexp.MustCompile(`__unm undefined`)
	reLenErr    = regexp.MustCompile(`__len undefined`)
)

func luajitMessage(msg string) string {
	msg = reIndexErr.ReplaceAllString(msg, "attempt to index a $1 value")
	msg = reConcatErr.ReplaceAllStringFunc(msg, func(m string) string {
		p := reConcatErr.FindStringSubmatch(m)
		bad := p[1]
		if bad == "string" || bad == "number" {
			bad = p[2]
		}
		return "attempt to concatenate a " + bad + " value"
	})
	msg = reArithErr.ReplaceAllStringFunc(msg, func(m string) string {
		p := reArithErr.FindStringSubmatch(m)
		bad := p[1]
		if bad == "number" {
			bad = p[2]
		}
		return "attempt to perform arithmetic on a " + bad + " value"
	})
	msg = reCallErr.ReplaceAllString(msg, "attempt to call a nil value")
	msg = reUnmErr.ReplaceAllString(msg, "attempt to perform arithmetic on a table value")
	msg = reLenErr.ReplaceAllString(msg, "attempt to get length of a nil value")
	return msg
}

// basePCall is pcall with LuaJIT's wording for runtime errors.
func basePCall(L *lua.LState) int {
	L.CheckAny(1)
	v := L.Get(1)
	if v.Type() != lua.LTFunction && L.GetMetaField(v, "__call").Type() != lua.LTFunction {
		L.Push(lua.LFalse)
		L.Push(lua.LString("attempt to call a " + v.Type().String() + " value"))
		return 2
	}
	nargs := L.GetTop() - 1
	if err := L.PCall(nargs, lua.MultRet, nil); err != nil {
		L.Push(lua.LFalse)
		if aerr, ok := err.(*lua.ApiError); ok {
			if s, isStr := aerr.Object.(lua.LString); isStr {
				L.Push(lua.LString(luajitMessage(namedMessage(string(s), aerr.StackTrace))))
			} else {
				L.Push(aerr.Object)
			}
		} else {
			L.Push(lua.LString(luajitMessage(err.Error())))
		}
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

// restyError raises like resty.core's error(msg, level) in a Lua function
// that the user's code called: level 2 is that function's caller, and the
// position is that of the function level frames up from the Go function
// (level 1 = its caller), with none when that frame is not Lua code (the
// main chunk itself, pcall).
func restyError(L *lua.LState, level int, format string, args ...any) {
	where := ""
	if dbg, ok := L.GetStack(level - 1); ok {
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.What != "G" && dbg.CurrentLine > 0 {
			where = fmt.Sprintf("%s:%d: ", dbg.Source, dbg.CurrentLine)
		}
	}
	L.Error(lua.LString(where+fmt.Sprintf(format, args...)), 0)
}

// callerIsLua reports whether the Go function running was called from Lua
// code (not from pcall or another Go function).
func callerIsLua(L *lua.LState) bool {
	dbg, ok := L.GetStack(1)
	if !ok {
		return false
	}
	_, err := L.GetInfo("S", dbg, lua.LNil)
	return err == nil && dbg.What != "G"
}
