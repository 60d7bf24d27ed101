package nginxconf

import (
	"strconv"
	"strings"

	"ngxsockify/nginxconf/vars"
)

// rewriteModule is ngx_http_rewrite_module (and set_by_lua, which runs
// among its statements): its directives compile to statements run in
// order in the server and location rewrite phases.
var rewriteModule = module{name: "ngx_http_rewrite_module", directives: []directive{
	{name: "set", set: addStmt},
	{name: "rewrite", set: addStmt},
	{name: "return", set: addStmt},
	{name: "break", set: addStmt},
	{name: "if", opens: ctxHTTPSif | ctxHTTPLif, set: addStmt},
	{name: "set_by_lua", set: addStmt},
	{name: "set_by_lua_block", set: addStmt},
	{name: "set_by_lua_file", set: addStmt},
}}

// addStmt compiles a rewrite-module directive into the level's statements.
// An if block is compiled once its enclosing block is complete, because
// it inherits every setting of its location, including those written
// after it; inside an if block, at once.
func addStmt(c *compiler, lv *level, d *Directive) {
	st, later := c.stmt(lv, d)
	*lv.stmts = append(*lv.stmts, st)
	switch {
	case later == nil:
	case lv.later == nil:
		later()
	default:
		*lv.later = append(*lv.later, later)
	}
}

// declare walks the http block once and declares every variable the config
// defines, so templates compiled later may use them in any order.
func (c *compiler) declare(dirs []*Directive, depth int) {
	for _, d := range dirs {
		switch d.Name {
		case "set", "set_by_lua", "set_by_lua_block", "set_by_lua_file", "auth_request_set":
			if len(d.Args) > 0 {
				name, ok := varName(d.Args[0])
				if !ok {
					c.fail(d, `invalid variable name "%s"`, d.Args[0])
				}
				if err := c.reg.Declare(name); err != nil {
					c.fail(d, "%s", err.Error())
				}
			}
		case "location":
			if n := len(d.Args); n == 2 || (n == 1 && strings.HasPrefix(d.Args[0], "~")) {
				p := d.Args[n-1]
				caseless := d.Args[0] == "~*" || strings.HasPrefix(d.Args[0], "~*")
				if n == 1 {
					p = strings.TrimPrefix(strings.TrimPrefix(d.Args[0], "~*"), "~")
				}
				if n == 1 || d.Args[0] == "~" || d.Args[0] == "~*" {
					c.declareCaptures(c.regex(d, n-1, p, caseless))
				}
			}
		case "rewrite":
			c.declareCaptures(c.regex(d, 0, d.Args[0], false))
		case "server_name":
			for i, a := range d.Args {
				if strings.HasPrefix(a, "~") {
					c.declareCaptures(c.regex(d, i, a[1:], true))
				}
			}
		case "if":
			if len(d.Args) == 3 && strings.Contains(d.Args[1], "~") {
				c.declareCaptures(c.regex(d, 2, d.Args[2], strings.HasSuffix(d.Args[1], "*")))
			}
		case "map", "geo", "split_clients":
			if len(d.Args) == 2 || d.Name == "geo" && len(d.Args) == 1 {
				if name, ok := varName(d.Args[len(d.Args)-1]); ok {
					if err := c.reg.Declare(name); err != nil {
						c.fail(d, "%s", err.Error())
					}
				}
			}
		}
		if d.Block != nil && d.Name != "map" && d.Name != "geo" && d.Name != "split_clients" && !strings.HasSuffix(d.Name, "_by_lua_block") && d.Name != "types" {
			c.declare(d.Block, depth+1)
		}
	}
}

func (c *compiler) declareCaptures(re *vars.Regex) {
	if re == nil {
		return
	}
	for _, n := range re.Names() {
		if err := c.reg.DeclareCapture(n); err != nil {
			c.errs = append(c.errs, &Error{Msg: err.Error()}) // nginx names no position here either
			if !c.collectAll {
				panic(errStop{})
			}
		}
	}
}

// varName strips the "$" of a variable argument.
func varName(s string) (string, bool) {
	if len(s) < 2 || s[0] != '$' {
		return "", false
	}
	return s[1:], true
}

// stmt compiles one rewrite-module directive. For `if` it returns the
// function that compiles its block.
func (c *compiler) stmt(lv *level, d *Directive) (Stmt, func()) {
	a := d.Args
	switch d.Name {
	case "set":
		name, _ := varName(a[0])
		ref, err := c.reg.Var(name)
		if err != nil {
			c.fail(d, "%s", err.Error())
		}
		return &SetStmt{Var: ref, Value: c.template(d, a[1])}, nil
	case "set_by_lua", "set_by_lua_block", "set_by_lua_file":
		name, _ := varName(a[0])
		ref, err := c.reg.Var(name)
		if err != nil {
			c.fail(d, "%s", err.Error())
		}
		st := &SetLuaStmt{Var: ref, Code: c.luaCode(d, "set", a[1])}
		for _, v := range a[2:] {
			st.Args = append(st.Args, c.template(d, v))
		}
		return st, nil
	case "rewrite":
		st := &RewriteStmt{Regex: c.regex(d, 0, a[0], false), KeepArgs: true}
		repl := a[1]
		if strings.HasPrefix(repl, "http://") || strings.HasPrefix(repl, "https://") || strings.HasPrefix(repl, "$scheme") {
			st.Redirect = true
		}
		if strings.HasSuffix(repl, "?") {
			repl = repl[:len(repl)-1]
			st.KeepArgs = false
		}
		st.Replacement = c.template(d, repl)
		if len(a) == 3 {
			switch a[2] {
			case "last", "break", "redirect", "permanent":
				st.Flag = a[2]
			default:
				c.fail(d, `invalid parameter "%s"`, a[2])
			}
		}
		return st, nil
	case "return":
		st := &ReturnStmt{}
		code, err := strconv.Atoi(a[0])
		if err != nil {
			if len(a) == 2 {
				c.fail(d, `invalid return code "%s"`, a[0])
			}
			if !strings.HasPrefix(a[0], "http://") && !strings.HasPrefix(a[0], "https://") && !strings.HasPrefix(a[0], "$scheme") {
				c.fail(d, `invalid return code "%s"`, a[0])
			}
			st.Code = 302
			st.Text = c.template(d, a[0])
			return st, nil
		}
		if code < 0 || code > 999 {
			c.fail(d, `invalid return code "%s"`, a[0])
		}
		st.Code = code
		if len(a) == 2 {
			st.Text = c.template(d, a[1])
		}
		return st, nil
	case "break":
		return &BreakStmt{}, nil
	case "if":
		st := &IfStmt{Cond: c.cond(d)}
		st.Loc = &Location{Modifier: ModPrefix, File: d.File, Line: d.EndLine}
		return st, func() {
			lc := c.newConf(lv.conf, false)
			c.block(&level{ctx: ctxIf, conf: lc, srv: lv.srv, loc: st.Loc, stmts: &st.Loc.Stmts}, d.Block)
			st.Loc.Conf = lc
		}
	}
	c.fail(d, `unknown directive "%s"`, d.Name)
	return nil, nil
}

// cond compiles the condition of an `if`.
func (c *compiler) cond(d *Directive) Cond {
	a := d.Args
	switch len(a) {
	case 1:
		if !strings.HasPrefix(a[0], "$") {
			c.fail(d, `invalid condition "%s"`, a[0])
		}
		return Cond{Left: c.template(d, a[0])}
	case 2:
		switch a[0] {
		case "-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x":
			return Cond{Op: a[0], Left: c.template(d, a[1])}
		}
		c.fail(d, `invalid condition "%s"`, a[0])
	case 3:
		if !strings.HasPrefix(a[0], "$") {
			c.fail(d, `invalid condition "%s"`, a[0])
		}
		cond := Cond{Op: a[1], Left: c.template(d, a[0])}
		switch a[1] {
		case "=", "!=":
			cond.Right = c.template(d, a[2])
		case "~", "~*", "!~", "!~*":
			cond.Regex = c.regex(d, 2, a[2], strings.HasSuffix(a[1], "*"))
		default:
			c.fail(d, `unexpected "%s" in condition`, a[1])
		}
		return cond
	}
	if len(a) == 0 {
		c.fail(d, `invalid condition ""`)
	}
	c.fail(d, `invalid condition "%s"`, a[len(a)-1])
	return Cond{}
}
