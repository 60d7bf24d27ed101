package luahooks

import (
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
)

// LuaJIT converts a numeric for loop's initial value, limit and step
// from strings ("for i = 1, ngx.var.arg_n do", a header's value) as
// arithmetic does; gopher-lua 1.1.2 refuses anything but a number ("for
// statement limit must be a number"). forNumbers wraps each of them that
// is not a number by its form (a literal, #t, arithmetic) in a call of
// forNumName, which converts a numeric string and raises LuaJIT's
// message for the rest ("'for' limit must be a number").

const forNumName = "__ngxsockify_fornum"

func forNumbers(s *ast.NumberForStmt) {
	s.Init = forNumber(s.Init, "initial value")
	s.Limit = forNumber(s.Limit, "limit")
	if s.Step != nil {
		s.Step = forNumber(s.Step, "step")
	}
}

func forNumber(e ast.Expr, what string) ast.Expr {
	switch e.(type) {
	case *ast.NumberExpr, *ast.UnaryLenOpExpr, *ast.ArithmeticOpExpr, *ast.UnaryMinusOpExpr:
		return e
	}
	fn := &ast.IdentExpr{Value: forNumName}
	arg := &ast.StringExpr{Value: what}
	call := &ast.FuncCallExpr{Func: fn, Args: []ast.Expr{e, arg}}
	for _, x := range []interface {
		SetLine(int)
		SetLastLine(int)
	}{fn, arg, call} {
		x.SetLine(e.Line())
		x.SetLastLine(e.LastLine())
	}
	return call
}

// baseForNum is forNumName's function: (value, what) -> a number.
func baseForNum(L *lua.LState) int {
	switch v := L.Get(1).(type) {
	case lua.LNumber:
		L.Push(v)
		return 1
	case lua.LString:
		if f, ok := parseLuaNumber(string(v)); ok {
			L.Push(lua.LNumber(f))
			return 1
		}
	}
	L.RaiseError("'for' %s must be a number", L.CheckString(2))
	return 0
}
