package luahooks

import (
	"context"
	"net/http"
	"ngxsockify/ngxlog"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Subrequest is one ngx.location.capture: an internal request the caller
// (the server) runs through its locations.
type Subrequest struct {
	Method string // "GET", "POST", ... (options.method; default GET)
	Path   string // the URI without its query
	Args   string // query string: the URI's own, then options.args, joined by "&"
	// Body is options.body, or the parent's body when it was read and the
	// method is POST or PUT (or always_forward_body is set); nil means no
	// body.
	Body []byte
	// ShareVars (share_all_vars): the subrequest uses the parent's
	// variables, writes included; CopyVars (copy_all_vars): a copy of
	// them. Otherwise it starts with none set.
	ShareVars, CopyVars bool
	// Vars (the vars option) are set in the subrequest before it runs,
	// each name with its value.
	Vars [][2]string

	ctx *lua.LTable // the ctx option: the subrequest's ngx.ctx
}

// Prepare gives the subrequest's Request what the options ask for (the
// ctx option becomes its ngx.ctx). The caller calls it once, before the
// subrequest runs.
func (sr Subrequest) Prepare(r *Request) {
	if sr.ctx != nil {
		r.luaCtx = sr.ctx
	}
}

// SubResponse is what the subrequest answered.
type SubResponse struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool
}

// UsesParentCtx reports whether the subrequest's ngx.ctx is a table of the
// parent's Lua state (the ctx option): it must not run beside another
// subrequest that may touch the same table.
func (sr Subrequest) UsesParentCtx() bool { return sr.ctx != nil }

// CaptureFunc runs the subrequests of one ngx.location.capture(_multi)
// call, side by side as lua-nginx-module does (it issues them all, then
// waits for all), and answers their responses in argument order. An error
// is raised in Lua as it is (lua-nginx-module's "failed to issue
// subrequest: -1"); the function logs the reason itself.
type CaptureFunc func(ctx context.Context, srs []Subrequest) ([]SubResponse, error)

var methodByConst = map[int]string{2: "GET", 4: "HEAD", 8: "POST", 16: "PUT", 32: "DELETE", 64: "MKCOL",
	128: "COPY", 256: "MOVE", 512: "OPTIONS", 1024: "PROPFIND", 2048: "PROPPATCH", 4096: "LOCK",
	8192: "UNLOCK", 16384: "PATCH", 32768: "TRACE"}

func (st *state) openLocation() *lua.LTable {
	return st.funcTable(map[string]lua.LGFunction{
		"capture": func(L *lua.LState) int {
			sr := st.subrequest(L, L.Get(1), L.Get(2), 1)
			L.Push(st.capture(L, []Subrequest{sr})[0])
			return 1
		},
		"capture_multi": func(L *lua.LState) int {
			list := L.CheckTable(1)
			var srs []Subrequest
			for i := 1; i <= list.Len(); i++ {
				item, ok := list.RawGetInt(i).(*lua.LTable)
				if !ok {
					cError(L, "only array-like tables are allowed")
				}
				srs = append(srs, st.subrequest(L, item.RawGetInt(1), item.RawGetInt(2), i))
			}
			if len(srs) == 0 {
				cError(L, "at least one subrequest should be specified")
			}
			res := st.capture(L, srs)
			for _, r := range res {
				L.Push(r)
			}
			return len(res)
		},
	})
}

// subrequest reads one (uri, options) pair.
func (st *state) subrequest(L *lua.LState, uriV, optsV lua.LValue, argn int) Subrequest {
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("location.capture")
	}
	req := st.request(L)
	uri, ok := uriV.(lua.LString)
	if !ok || uri == "" {
		cArgError(L, argn, "capture", "string expected")
	}
	sr := Subrequest{Method: "GET", Path: string(uri)}
	if i := strings.IndexByte(sr.Path, '?'); i >= 0 {
		sr.Path, sr.Args = sr.Path[:i], sr.Path[i+1:]
	}
	forward := false
	if opts, ok := optsV.(*lua.LTable); ok {
		switch m := opts.RawGetString("method").(type) {
		case lua.LNumber:
			name, known := methodByConst[int(m)]
			if !known {
				// nginx issues the subrequest, then fails to adjust it.
				st.logf(ngxlog.Err, "unsupported HTTP method: %d", int(m))
				cError(L, "failed to adjust the subrequest: -1")
			}
			sr.Method = name
		case *lua.LNilType:
		default:
			cError(L, "Bad http request method")
		}
		switch a := opts.RawGetString("args").(type) {
		case lua.LString:
			sr.Args = joinArgs(sr.Args, string(a))
		case lua.LNumber:
			sr.Args = joinArgs(sr.Args, formatNumber(float64(a)))
		case *lua.LTable:
			sr.Args = joinArgs(sr.Args, st.encodeArgs(L, a))
		case *lua.LNilType:
		default:
			cError(L, "Bad args option value")
		}
		switch b := opts.RawGetString("body").(type) {
		case lua.LString:
			sr.Body = []byte(string(b))
		case *lua.LNilType:
		default:
			cError(L, "Bad http request body")
		}
		forward = lua.LVAsBool(opts.RawGetString("always_forward_body"))
		sr.ShareVars = boolOption(L, opts, "share_all_vars")
		sr.CopyVars = boolOption(L, opts, "copy_all_vars")
		switch c := opts.RawGetString("ctx").(type) {
		case *lua.LTable:
			sr.ctx = c
		case *lua.LNilType:
		default:
			cError(L, "Bad ctx option value type %s, expected a Lua table", c.Type())
		}
		switch v := opts.RawGetString("vars").(type) {
		case *lua.LTable:
			v.ForEach(func(k, val lua.LValue) {
				var s string
				switch x := val.(type) {
				case lua.LString:
					s = string(x)
				case lua.LNumber:
					s = formatNumber(float64(x))
				default:
					cError(L, "attempt to use bad variable value type %s", val.Type())
				}
				name, ok := k.(lua.LString)
				if !ok {
					cError(L, "attempt to use a non-string key in the \"vars\" option table")
				}
				sr.Vars = append(sr.Vars, [2]string{string(name), s})
			})
		case *lua.LNilType:
		default:
			cError(L, "Bad vars option value")
		}
	}
	if sr.Body == nil && req.bodyRead && (forward || sr.Method == "POST" || sr.Method == "PUT") {
		sr.Body = req.body
		if sr.Body == nil {
			sr.Body = []byte{}
		}
	}
	return sr
}

func joinArgs(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "&" + b
}

// capture runs the subrequests and builds their result tables.
func (st *state) capture(L *lua.LState, srs []Subrequest) []*lua.LTable {
	req := st.request(L)
	if req.Capture == nil {
		L.RaiseError("ngx.location.capture is not supported by ngxsockify here")
	}
	if st.r.sched != nil {
		// nginx's capture waits for the subrequests: the other light
		// threads go first. Ours then run holding the baton, since they
		// share the request with the other threads.
		st.block(func(<-chan struct{}) error { return nil })
	}
	// The parent waits: the state is free for its timers meanwhile (a
	// subrequest may wait on what a timer holds), while the parent's light
	// threads keep waiting. Not with the ctx option: a subrequest then
	// uses a table of this state.
	r := st.r
	if req.OnWait != nil {
		req.OnWait()
	}
	keep := false
	for i := range srs {
		keep = keep || srs[i].ctx != nil
	}
	if !keep {
		st.leave()
	}
	if r.ctx != nil {
		// waiting, not running Lua: the run's clock stops meanwhile
		r.ctx.pause()
	}
	results, err := req.Capture(r.ctx, srs)
	if r.ctx != nil {
		r.ctx.resume()
	}
	if !keep {
		st.enter(r)
	}
	st.r.now = time.Now() // nginx's time moved on
	if err != nil {
		// The caller logged why ("lua subrequests cycle while
		// processing ..."); err is the Lua error to raise.
		cError(L, "%s", err.Error())
	}
	out := make([]*lua.LTable, len(results))
	for i, res := range results {
		t := L.CreateTable(0, 4)
		t.RawSetString("status", lua.LNumber(res.Status))
		h := L.NewTable()
		for k, vals := range res.Header {
			switch len(vals) {
			case 0:
			case 1:
				h.RawSetString(k, lua.LString(vals[0]))
			default:
				arr := L.CreateTable(len(vals), 0)
				for _, v := range vals {
					arr.Append(lua.LString(v))
				}
				h.RawSetString(k, arr)
			}
		}
		t.RawSetString("header", h)
		t.RawSetString("body", lua.LString(res.Body))
		t.RawSetString("truncated", lua.LBool(res.Truncated))
		out[i] = t
	}
	return out
}

// boolOption reads a boolean option of capture: nil is false, anything
// but a boolean raises "Bad NAME option value".
func boolOption(L *lua.LState, opts *lua.LTable, name string) bool {
	switch v := opts.RawGetString(name).(type) {
	case *lua.LNilType:
		return false
	case lua.LBool:
		return bool(v)
	}
	cError(L, "Bad %s option value", name)
	return false
}
