package luahooks

import (
	"strconv"

	"github.com/yuin/gopher-lua/ast"
)

// gopher-lua 1.1.2 compiles a multiple assignment one target at a time,
// so an expression on the right that reads a variable assigned before it
// sees the new value: "a, b = b, a" leaves both 2 where Lua swaps them,
// and "a, b = b, a + b" (a Fibonacci step) doubles. Lua evaluates every
// expression first, then assigns. splitMultiAssign rewrites each such
// statement, before compiling, into
//
//	do local (1), (2) = <rhs...>; <lhs...> = (1), (2) end
//
// whose locals no source can name; the second statement reads only them.

// splitMultiAssign rewrites the multiple assignments of stmts, and of
// every function and block inside them, in place.
func splitMultiAssign(stmts []ast.Stmt) {
	for i, st := range stmts {
		stmts[i] = multiAssignStmt(st)
	}
}

func multiAssignStmt(st ast.Stmt) ast.Stmt {
	switch s := st.(type) {
	case *ast.AssignStmt:
		multiAssignExprs(s.Lhs)
		multiAssignExprs(s.Rhs)
		if len(s.Lhs) < 2 {
			return s
		}
		tmp := &ast.LocalAssignStmt{Exprs: s.Rhs}
		tmp.SetLine(s.Line())
		tmp.SetLastLine(s.LastLine())
		rhs := make([]ast.Expr, len(s.Lhs))
		for i := range s.Lhs {
			name := "(" + strconv.Itoa(i+1) + ")"
			tmp.Names = append(tmp.Names, name)
			id := &ast.IdentExpr{Value: name}
			id.SetLine(s.Line())
			id.SetLastLine(s.LastLine())
			rhs[i] = id
		}
		assign := &ast.AssignStmt{Lhs: s.Lhs, Rhs: rhs}
		assign.SetLine(s.Line())
		assign.SetLastLine(s.LastLine())
		blk := &ast.DoBlockStmt{Stmts: []ast.Stmt{tmp, assign}}
		blk.SetLine(s.Line())
		blk.SetLastLine(s.LastLine())
		return blk
	case *ast.LocalAssignStmt:
		multiAssignExprs(s.Exprs)
	case *ast.FuncCallStmt:
		multiAssignExpr(s.Expr)
	case *ast.DoBlockStmt:
		splitMultiAssign(s.Stmts)
	case *ast.WhileStmt:
		multiAssignExpr(s.Condition)
		splitMultiAssign(s.Stmts)
	case *ast.RepeatStmt:
		multiAssignExpr(s.Condition)
		splitMultiAssign(s.Stmts)
	case *ast.IfStmt:
		multiAssignExpr(s.Condition)
		splitMultiAssign(s.Then)
		splitMultiAssign(s.Else)
	case *ast.NumberForStmt:
		forNumbers(s) // fornum.go: the same walk
		multiAssignExpr(s.Init)
		multiAssignExpr(s.Limit)
		multiAssignExpr(s.Step)
		splitMultiAssign(s.Stmts)
	case *ast.GenericForStmt:
		multiAssignExprs(s.Exprs)
		splitMultiAssign(s.Stmts)
	case *ast.FuncDefStmt:
		multiAssignExpr(s.Func)
	case *ast.ReturnStmt:
		multiAssignExprs(s.Exprs)
	}
	return st
}

func multiAssignExprs(exprs []ast.Expr) {
	for _, e := range exprs {
		multiAssignExpr(e)
	}
}

// multiAssignExpr finds the function bodies inside an expression.
func multiAssignExpr(e ast.Expr) {
	switch x := e.(type) {
	case *ast.FunctionExpr:
		splitMultiAssign(x.Stmts)
	case *ast.AttrGetExpr:
		multiAssignExpr(x.Object)
		multiAssignExpr(x.Key)
	case *ast.TableExpr:
		for _, f := range x.Fields {
			multiAssignExpr(f.Key)
			multiAssignExpr(f.Value)
		}
	case *ast.FuncCallExpr:
		multiAssignExpr(x.Func)
		multiAssignExpr(x.Receiver)
		multiAssignExprs(x.Args)
	case *ast.LogicalOpExpr:
		multiAssignExpr(x.Lhs)
		multiAssignExpr(x.Rhs)
	case *ast.RelationalOpExpr:
		multiAssignExpr(x.Lhs)
		multiAssignExpr(x.Rhs)
	case *ast.StringConcatOpExpr:
		multiAssignExpr(x.Lhs)
		multiAssignExpr(x.Rhs)
	case *ast.ArithmeticOpExpr:
		multiAssignExpr(x.Lhs)
		multiAssignExpr(x.Rhs)
	case *ast.UnaryMinusOpExpr:
		multiAssignExpr(x.Expr)
	case *ast.UnaryNotOpExpr:
		multiAssignExpr(x.Expr)
	case *ast.UnaryLenOpExpr:
		multiAssignExpr(x.Expr)
	}
}
