package luahooks

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/yuin/gopher-lua/ast"
)

// LuaJIT names what a failed call or indexing acted on: "attempt to call
// field 'echo' (a nil value)", "attempt to index local 't' (a nil value)".
// gopher-lua's messages give the line only. So when a chunk is compiled,
// its syntax tree is read once for every call and every indexing by a
// constant key, with the line each starts on and what LuaJIT would call
// the value (exprNames); a runtime error at that line takes the name when
// the line holds exactly one candidate, or several that agree, and keeps
// the anonymous wording otherwise.

// namedExpr is a call or an indexing that may fail at run time.
type namedExpr struct {
	call bool   // a call; else an indexing of key
	key  string // the constant key indexed
	what string // LuaJIT's name of the value ("field 'echo'"); "" for none
	fn   int    // the line the enclosing function is defined on; 0: main chunk
}

// exprNames lists a chunk's calls and indexings by line.
type exprNames map[int][]namedExpr

// chunkNames maps a compiled chunk's name to its exprNames. Chunks of
// nginx.conf and files are named uniquely; a chunk compiled again under
// the same name (a reload) replaces the last.
var chunkNames sync.Map

// recordNames reads chunk's calls and indexings for the error messages of
// the chunk called name.
func recordNames(name string, chunk []ast.Stmt) {
	if strings.HasPrefix(name, "[string") || strings.HasPrefix(name, "=") {
		return // loadstring's code: any number of them, and rarely at fault
	}
	n := &namer{lines: exprNames{}}
	n.enter(nil)
	n.stmts(chunk)
	chunkNames.Store(name, n.lines)
}

// namer walks a chunk with its scopes: a name is a local of the function
// declaring it, an upvalue in the functions nested in it, else a global.
type namer struct {
	lines  exprNames
	scopes []nameScope // innermost last
	depth  int         // function nesting
	fn     int         // the line of the function walked; 0: main chunk
}

type nameScope struct {
	names []string
	depth int
}

func (n *namer) enter(names []string) {
	n.scopes = append(n.scopes, nameScope{names: names, depth: n.depth})
}

func (n *namer) leave() { n.scopes = n.scopes[:len(n.scopes)-1] }

func (n *namer) declare(names ...string) {
	s := &n.scopes[len(n.scopes)-1]
	s.names = append(s.names, names...)
}

func (n *namer) block(stmts []ast.Stmt, names ...string) {
	n.enter(names)
	n.stmts(stmts)
	n.leave()
}

func (n *namer) stmts(stmts []ast.Stmt) {
	for _, st := range stmts {
		n.stmt(st)
	}
}

func (n *namer) stmt(st ast.Stmt) {
	switch s := st.(type) {
	case *ast.AssignStmt:
		n.exprs(s.Lhs)
		n.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		if len(s.Names) == 1 && len(s.Exprs) == 1 {
			if _, ok := s.Exprs[0].(*ast.FunctionExpr); ok {
				// local function f: f is seen in its own body
				n.declare(s.Names...)
				n.exprs(s.Exprs)
				return
			}
		}
		n.exprs(s.Exprs)
		n.declare(s.Names...)
	case *ast.FuncCallStmt:
		n.expr(s.Expr)
	case *ast.DoBlockStmt:
		n.block(s.Stmts)
	case *ast.WhileStmt:
		n.expr(s.Condition)
		n.block(s.Stmts)
	case *ast.RepeatStmt:
		n.enter(nil)
		n.stmts(s.Stmts)
		n.expr(s.Condition)
		n.leave()
	case *ast.IfStmt:
		n.expr(s.Condition)
		n.block(s.Then)
		n.block(s.Else)
	case *ast.NumberForStmt:
		n.exprs([]ast.Expr{s.Init, s.Limit, s.Step})
		n.block(s.Stmts, s.Name)
	case *ast.GenericForStmt:
		n.exprs(s.Exprs)
		n.block(s.Stmts, s.Names...)
	case *ast.FuncDefStmt:
		if s.Name.Receiver != nil {
			n.expr(s.Name.Receiver)
			n.function(s.Func, "self")
		} else {
			if _, ok := s.Name.Func.(*ast.IdentExpr); !ok {
				n.expr(s.Name.Func)
			}
			n.function(s.Func)
		}
	case *ast.ReturnStmt:
		n.exprs(s.Exprs)
	}
}

func (n *namer) exprs(exprs []ast.Expr) {
	for _, e := range exprs {
		n.expr(e)
	}
}

func (n *namer) function(f *ast.FunctionExpr, self ...string) {
	outer := n.fn
	n.depth++
	n.fn = f.Line()
	n.block(f.Stmts, append(self, f.ParList.Names...)...)
	n.depth--
	n.fn = outer
}

func (n *namer) add(line int, e namedExpr) {
	e.fn = n.fn
	n.lines[line] = append(n.lines[line], e)
}

func (n *namer) expr(e ast.Expr) {
	switch x := e.(type) {
	case nil:
	case *ast.AttrGetExpr:
		n.expr(x.Object)
		n.expr(x.Key)
		if k, ok := x.Key.(*ast.StringExpr); ok {
			n.add(x.Line(), namedExpr{key: k.Value, what: n.describe(x.Object)})
		}
	case *ast.FuncCallExpr:
		if x.Receiver != nil {
			n.expr(x.Receiver)
			n.add(x.Line(), namedExpr{key: x.Method, what: n.describe(x.Receiver)})
			n.add(x.Line(), namedExpr{call: true, what: "method '" + x.Method + "'"})
		} else {
			n.expr(x.Func)
			n.add(x.Line(), namedExpr{call: true, what: n.describe(x.Func)})
		}
		n.exprs(x.Args)
	case *ast.FunctionExpr:
		n.function(x)
	case *ast.TableExpr:
		for _, f := range x.Fields {
			n.expr(f.Key)
			n.expr(f.Value)
		}
	case *ast.LogicalOpExpr:
		n.exprs([]ast.Expr{x.Lhs, x.Rhs})
	case *ast.RelationalOpExpr:
		n.exprs([]ast.Expr{x.Lhs, x.Rhs})
	case *ast.StringConcatOpExpr:
		n.exprs([]ast.Expr{x.Lhs, x.Rhs})
	case *ast.ArithmeticOpExpr:
		n.exprs([]ast.Expr{x.Lhs, x.Rhs})
	case *ast.UnaryMinusOpExpr:
		n.expr(x.Expr)
	case *ast.UnaryNotOpExpr:
		n.expr(x.Expr)
	case *ast.UnaryLenOpExpr:
		n.expr(x.Expr)
	}
}

// describe is LuaJIT's name of the value of e: "local 'x'", "upvalue
// 'x'", "global 'x'", "field 'k'", or "" when it gives none.
func (n *namer) describe(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.IdentExpr:
		for i := len(n.scopes) - 1; i >= 0; i-- {
			s := n.scopes[i]
			for _, name := range s.names {
				if name != x.Value {
					continue
				}
				if s.depth == n.depth {
					return "local '" + x.Value + "'"
				}
				return "upvalue '" + x.Value + "'"
			}
		}
		return "global '" + x.Value + "'"
	case *ast.AttrGetExpr:
		if k, ok := x.Key.(*ast.StringExpr); ok {
			return "field '" + k.Value + "'"
		}
	}
	return ""
}

// reNameable finds gopher-lua's call and index errors with their position.
var reNameable = regexp.MustCompile(`^(.+?):(\d+): attempt to (?:call a non-function object|index a non-table object\((\w+)\) with key '([^'\n]*)')`)

// reTraceTop reads the function an error was raised in from the first
// frame of gopher-lua's stack traceback when it is a function defined at a
// line. One called by name does not say, and "main chunk" is also any
// function a coroutine (a light thread) started with.
var reTraceTop = regexp.MustCompile(`^stack traceback:\n\t[^\n]*: in function <[^\n]*:(\d+)>\n`)

// namedMessage rewrites a call or index error into LuaJIT's words with the
// name of the value when its line, and the function trace says it was
// raised in, tell it; other messages are returned as they are.
func namedMessage(msg, trace string) string {
	m := reNameable.FindStringSubmatchIndex(msg)
	if m == nil {
		return msg
	}
	chunk, lineText := msg[m[2]:m[3]], msg[m[4]:m[5]]
	call := m[6] < 0
	v, ok := chunkNames.Load(chunk)
	if !ok {
		return msg
	}
	fn := -1 // unknown
	if t := reTraceTop.FindStringSubmatch(trace); t != nil {
		fn, _ = strconv.Atoi(t[1])
	}
	line, _ := strconv.Atoi(lineText)
	what := ""
	for _, e := range v.(exprNames)[line] {
		if e.call != call || !call && e.key != msg[m[8]:m[9]] || fn >= 0 && e.fn != fn {
			continue
		}
		if e.what == "" || what != "" && e.what != what {
			return msg
		}
		what = e.what
	}
	if what == "" {
		return msg
	}
	typ := "nil" // gopher-lua does not say what was called
	verb := "call"
	if !call {
		typ, verb = msg[m[6]:m[7]], "index"
	}
	return msg[:m[4]] + lineText + ": attempt to " + verb + " " + what + " (a " + typ + " value)" + msg[m[1]:]
}
