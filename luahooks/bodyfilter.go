package luahooks

import (
	"context"
	"errors"

	lua "github.com/yuin/gopher-lua"
)

// filterArg is what body_filter_by_lua sees as ngx.arg: the chunk of the
// response body passing the filter and whether it is the last one.
type filterArg struct {
	data []byte
	eof  bool
	rc   int // the chunk's return value when a number (ngx.ERROR: -1)
}

// ErrBodyFilter wraps the error of a body_filter_by_lua run that failed:
// nginx aborts the response (the connection closes without the rest).
var ErrBodyFilter = errors.New("body filter failed")

// RunBodyFilter runs body_filter_by_lua on one chunk of the response body
// (eof: nothing follows it) and returns the chunk as the code left it in
// ngx.arg[1] and whether the body ends there (ngx.arg[2]; setting it true
// cuts off the rest). The headers are out: ngx.header is read-only, and
// ngx.say, ngx.exit and the like are disabled, as in nginx. A non-nil
// error (wrapping ErrBodyFilter) is the error-log line; the caller then
// aborts the response.
func (rt *Runtime) RunBodyFilter(ctx context.Context, c *Chunk, req *Request, data []byte, eof bool) ([]byte, bool, error) {
	f := &filterArg{data: data, eof: eof}
	req.filter = f
	defer func() { req.filter = nil }()
	out := rt.Run(ctx, c, req)
	if out.Err != nil {
		return nil, false, &runError{msg: out.Err.Error(), err: ErrBodyFilter}
	}
	if f.rc == -1 || f.rc >= 300 { // return ngx.ERROR, or a status
		return nil, false, &runError{msg: "body_filter_by_lua returned an error", err: ErrBodyFilter}
	}
	return f.data, f.eof, nil
}

// bodyFilterArg returns ngx.arg's chunk in body_filter_by_lua, nil in
// other phases.
func (st *state) bodyFilterArg() *filterArg {
	if st.r.phase != PhaseBodyFilter || st.r.req == nil {
		return nil
	}
	return st.r.req.filter
}

// ngxArgNewIndex sets ngx.arg[1] (the chunk: a string, a number, nil for
// none, or an array table written as ngx.print writes it) and ngx.arg[2]
// (true ends the body here) in body_filter_by_lua.
func (st *state) ngxArgNewIndex(L *lua.LState) int {
	f := st.bodyFilterArg()
	if f == nil {
		L.RawSet(L.CheckTable(1), L.Get(2), L.Get(3))
		return 0
	}
	idx := L.CheckInt(2)
	switch idx {
	case 1:
	case 2:
		f.eof = lua.LVAsBool(L.Get(3))
		return 0
	default:
		cError(L, "bad index: %d", idx)
	}
	switch v := L.Get(3).(type) {
	case lua.LString:
		f.data = []byte(v)
	case lua.LNumber:
		f.data = []byte(formatNumber(float64(v)))
	case *lua.LNilType:
		f.data = nil
	case *lua.LTable:
		b := &st.r.body
		b.Reset()
		st.writeValue(L, v, 3, "__newindex", 0)
		f.data = append([]byte(nil), b.Bytes()...)
		b.Reset()
	default:
		cError(L, "bad chunk data type: %s", v.Type())
	}
	return 0
}
