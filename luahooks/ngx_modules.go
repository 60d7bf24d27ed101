package luahooks

import (
	"encoding/base64"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// openNgxRe is require "ngx.re" (lua-resty-core): split and opt.
func (st *state) openNgxRe() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"split": st.reSplit,
		"opt":   func(L *lua.LState) int { return 0 },
	})
}

// reSplit is ngx.re.split(subject, regex, options?, ctx?, max?, res?):
// the pieces between matches, with the first capture of each match
// inserted after its piece; without max, trailing empty pieces are
// dropped; an empty match splits between characters.
func (st *state) reSplit(L *lua.LState) int {
	subj := st.toStr(L.CheckAny(1))
	pat := L.CheckString(2)
	flags := ""
	if v := L.Get(3); v != lua.LNil {
		flags = L.CheckString(3)
	}
	ctx, _ := L.Get(4).(*lua.LTable)
	pos := 1
	if ctx != nil {
		if n, ok := ctx.RawGetString("pos").(lua.LNumber); ok {
			pos = int(n)
		}
	}
	max := L.OptInt(5, 0)
	res, _ := L.Get(6).(*lua.LTable)
	if L.Get(6) != lua.LNil && res == nil {
		L.RaiseError("res is not a table")
	}
	if res == nil {
		res = L.NewTable()
	}
	n := len(subj)
	if pos > n {
		res.RawSetInt(1, lua.LNil)
		L.Push(res)
		return 1
	}
	rx, err := compileRegex(pat, flags)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown flag") {
			L.RaiseError("%s", err.Error())
		}
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	sub := newSubject(subj, rx.utf8)
	var pieces []string
	subIdx := pos     // 1-based start of the current piece
	search := pos - 1 // byte offset of the next search
	lastEmpty := 0    // 1-based position of the last empty match
	count := 1
	for max <= 0 || count < max {
		if search > n {
			break
		}
		m, err := rx.find(sub, sub.runeIdx(search))
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 2
		}
		if m == nil {
			break
		}
		from0, to0 := sub.byteOff(m.Index), sub.byteOff(m.Index+m.Length)
		if from0 == to0 {
			search = to0 + 1
		} else {
			search = to0
		}
		from, to := from0+1, to0+1
		capture, hasCapture := "", false
		if rx.ncap > 0 {
			if g := m.GroupByNumber(1); g != nil && len(g.Captures) > 0 {
				capture, hasCapture = sub.text(g), true
			}
		}
		if lastEmpty != 0 {
			subIdx = lastEmpty
		}
		if from == to {
			lastEmpty = from
		}
		if from > subIdx || lastEmpty == 0 {
			count++
			pieces = append(pieces, subj[subIdx-1:from-1])
			if hasCapture {
				pieces = append(pieces, capture)
			}
			subIdx = to
			if subIdx > n {
				break
			}
		}
	}
	if max <= 0 && subIdx > n {
		for len(pieces) > 0 && pieces[len(pieces)-1] == "" {
			pieces = pieces[:len(pieces)-1]
		}
	} else {
		pieces = append(pieces, subj[subIdx-1:])
	}
	for i, p := range pieces {
		res.RawSetInt(i+1, lua.LString(p))
	}
	res.RawSetInt(len(pieces)+1, lua.LNil)
	if ctx != nil {
		ctx.RawSetString("pos", lua.LNumber(search+1))
	}
	L.Push(res)
	return 1
}

// openNgxBase64 is require "ngx.base64": URL-safe base64 without padding.
func (st *state) openNgxBase64() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"encode_base64url": func(L *lua.LState) int {
			s, ok := L.Get(1).(lua.LString)
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("must provide a string"))
				return 2
			}
			L.Push(lua.LString(base64.RawURLEncoding.EncodeToString([]byte(s))))
			return 1
		},
		"decode_base64url": func(L *lua.LState) int {
			s, ok := L.Get(1).(lua.LString)
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("must provide a string"))
				return 2
			}
			out, ok := decodeBase64Nginx(string(s), true)
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("invalid input"))
				return 2
			}
			L.Push(lua.LString(out))
			return 1
		},
	})
}
