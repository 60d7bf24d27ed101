package proxy

import (
	"net/http"
	"ngxsockify/proxy/static"
	"strings"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
)

// rewriteModule is nginx's ngx_http_rewrite_module: set, rewrite, if,
// return and break, run in the server rewrite phase (the server block's
// statements) and the rewrite phase (the location's). set_by_lua runs among
// them, as lua-nginx-module plugs it into the same script engine.
var rewriteModule = module{
	name: "rewrite",
	register: func(e *engine) {
		e.add(phaseServerRewrite, serverRewrite)
		e.add(phaseRewrite, locationRewrite)
	},
}

func serverRewrite(rq *request) rc {
	// nginx runs this phase with the server's settings, on the first pass
	// and after an internal redirect (ngx_http_internal_redirect resets
	// the location's settings to the server's): $secure_link,
	// $invalid_referer and $document_root read here, or a redirect's
	// Location, follow the server block
	rq.conf = rq.srv.Conf
	rq.setPaths()
	// server_rewrite_by_lua runs before the statements (nginx runs a
	// phase's handlers last registered first; lua's registers later).
	if r := luaServerRewrite(rq); r != rcDeclined {
		return r
	}
	if rq.runStmts(rq.srv.Stmts) == flowDone {
		return rcDone
	}
	return rcDeclined // rewrite ... last at server level goes on to find-config anyway
}

// locationRewrite runs the statements of the location the request is in.
// A limit_except block that applies has none (nginx gives it its own
// rewrite configuration, empty).
func locationRewrite(rq *request) rc {
	if rq.st.cfg.HTTP.Lua.RewriteNoPostpone {
		// rewrite_by_lua_no_postpone on: the Lua hook runs before the
		// location's statements (luaRewrite then leaves it alone)
		if c := rq.conf.RewriteLua; c != nil && !rq.runLuaPhase(c) {
			return rcDone
		}
	}
	if rq.loc == nil || rq.conf != rq.loc.Conf {
		return rcDeclined
	}
	if rq.runStmts(rq.loc.Stmts) == flowDone {
		return rcDone
	}
	if rq.uriChanged {
		// headers-more's input handler still runs (it does not look at
		// r->uri_changed), rewrite_by_lua does not; post-rewrite searches
		// again
		if moreInputHandler(rq) == rcDone {
			return rcDone
		}
		return rcOK
	}
	return rcDeclined
}

// stmt results.
type flow int

const (
	flowNext  flow = iota // go on with the next statement
	flowBreak             // stop the rewrite statements, stay in this location
	flowLast              // the URI changed: search the locations again
	flowDone              // a response was sent
)

func (rq *request) runStmts(list []nginxconf.Stmt) flow {
	for _, s := range list {
		switch s := s.(type) {
		case *nginxconf.SetStmt:
			s.Var.Set(rq.v, s.Value.Eval(rq.v))
		case *nginxconf.SetLuaStmt:
			if f := rq.setByLua(s); f != flowNext {
				return f
			}
		case *nginxconf.RewriteStmt:
			if f := rq.rewrite(s); f != flowNext {
				return f
			}
		case *nginxconf.ReturnStmt:
			rq.doReturn(s)
			return flowDone
		case *nginxconf.BreakStmt:
			// nginx's break code: no new location search, and a URI a
			// rewrite changed goes to proxy_pass whole (valid_location = 0)
			if rq.uriChanged {
				rq.uriChanged, rq.proxyWholeURI = false, true
			}
			return flowBreak
		case *nginxconf.IfStmt:
			if !rq.test(&s.Cond) {
				if rq.w.wrote {
					return flowDone // the condition's regex failed
				}
				continue
			}
			if s.Loc.Conf != nil {
				rq.conf = s.Loc.Conf
				rq.ifProxy = rq.ifProxy || s.Loc.Conf.ProxyPass != nil
				rq.setPaths()
			}
			if f := rq.runStmts(s.Loc.Stmts); f != flowNext {
				return f
			}
		}
	}
	return flowNext
}

func (rq *request) rewrite(s *nginxconf.RewriteStmt) flow {
	caps, ok, err := s.Regex.Exec(rq.v.URI)
	if err != nil {
		rq.regexFailed(s.Regex, rq.v.URI)
		return flowDone
	}
	if !ok {
		rq.v.SetCaptures(nil) // nginx ran the regex into the request's capture vector
		return flowNext
	}
	rq.v.SetCaptures(caps)
	rawPath, _, _ := strings.Cut(rq.r.RequestURI, "?")
	quoted := vars.QuotedURI(rawPath)
	redirect := s.Redirect || s.Flag == "redirect" || s.Flag == "permanent"
	var target string
	if redirect {
		target = s.Replacement.EvalRedirect(rq.v, quoted)
	} else {
		target = s.Replacement.EvalRewrite(rq.v, quoted)
	}
	if redirect {
		code := http.StatusFound
		if s.Flag == "permanent" {
			code = http.StatusMovedPermanently
		}
		if s.KeepArgs && rq.v.Args != "" {
			if s.Replacement.LiteralQuery() {
				target += "&" + rq.v.Args
			} else {
				target += "?" + rq.v.Args
			}
		}
		rq.redirect(code, target)
		return flowDone
	}
	path, args, hasArgs := strings.Cut(target, "?")
	switch {
	case hasArgs && s.KeepArgs && rq.v.Args != "":
		rq.v.Args = args + "&" + rq.v.Args
	case hasArgs:
		rq.v.Args = args
	case !s.KeepArgs:
		rq.v.Args = ""
	}
	rq.v.URI = path
	// nginx's regex code marks the request internal when it changes the
	// URI, and (but under "break") to search the locations again after
	// the location's rewrite statements, whether "last" ends them or not
	rq.internal = true
	rq.uriChanged = s.Flag != "break"
	rq.proxyWholeURI = s.Flag == "break"
	rq.setPaths()
	switch s.Flag {
	case "last":
		return flowLast
	case "break":
		return flowBreak
	}
	return flowNext
}

// test evaluates an `if` condition.
func (rq *request) test(c *nginxconf.Cond) bool {
	left := c.Left.Eval(rq.v)
	switch c.Op {
	case "":
		return left != "" && left != "0"
	case "=":
		return left == c.Right.Eval(rq.v)
	case "!=":
		return left != c.Right.Eval(rq.v)
	case "~", "~*", "!~", "!~*":
		// nginx runs the regex with the request's capture vector: a failed
		// match leaves $1..$9 empty.
		caps, ok, err := c.Regex.Exec(left)
		if err != nil {
			rq.regexFailed(c.Regex, left)
			return false
		}
		rq.v.SetCaptures(caps)
		return ok == (c.Op[0] == '~')
	}
	neg := strings.HasPrefix(c.Op, "!")
	fi, err := rq.statFile(left)
	var r bool
	switch strings.TrimPrefix(c.Op, "!") {
	case "-f":
		r = err == nil && fi.Mode().IsRegular()
	case "-d":
		r = err == nil && fi.IsDir()
	case "-e":
		r = err == nil
	case "-x":
		r = err == nil && fi.Mode()&0o111 != 0
	}
	return r != neg
}

func (rq *request) doReturn(s *nginxconf.ReturnStmt) {
	code := s.Code
	if code == 444 {
		rq.closeConn()
		return
	}
	text := ""
	if s.Text != nil {
		text = s.Text.Eval(rq.v)
	}
	switch {
	case code == 301 || code == 302 || code == 303 || code == 307 || code == 308:
		rq.redirect(code, text) // no text: an empty Location, as nginx sends
	case s.Text == nil && code >= 400:
		rq.finalize(code)
	default:
		rq.bodyQueued = true
		// nginx's ngx_http_send_response: a status an error_page set
		// stays, and no error_page applies to this one; a Content-Type
		// already set (kept from an X-Accel-Redirect answer) stays too;
		// otherwise the type of the URI's extension, as for a file
		// (ngx_http_set_content_type), else default_type
		ctype := rq.contentType()
		if rq.w.Header().Get("Content-Type") != "" {
			ctype = ""
		}
		rq.send(code, ctype, []byte(text))
	}
}

// contentType is the type nginx gives a response it makes itself
// (ngx_http_set_content_type): the type of the URI's extension, as for a
// file, else default_type.
func (rq *request) contentType() string {
	o := &static.Options{Types: rq.conf.Types, DefaultType: "-"}
	if t := static.ContentType(rq.v.URI, o); t != "-" {
		return t
	}
	return rq.conf.DefaultType
}
