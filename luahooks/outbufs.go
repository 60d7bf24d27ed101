package luahooks

import (
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// lua-nginx-module takes the buffer of each ngx.say and ngx.print from the
// request's free list (ctx->free_bufs, which cosocket sends share: sendBuf
// logs its debug lines), and so does each ngx.flush for the empty buffer
// that flushes. A buffer goes back to the list once nginx's write filter
// sent it: at a flush, or when the output it holds (the response header
// first, each buffer in a chunk of its own) reaches postpone_output; each
// goes to the list's head in the order sent. Only the debug lines depend
// on this. Subrequests (their output goes to the capture) and HTTP/1.0
// responses that lua_http10_buffering holds to the end are not followed.

// outModeled reports whether the request's output buffers are followed.
func (st *state) outModeled() bool {
	req := st.r.req
	return req != nil && !req.Subrequest && !req.http10Buffering()
}

// outBuf is ngx.say or ngx.print handing n bytes (n > 0) to the output
// in a buffer of size bytes (echoSize).
func (st *state) outBuf(size, n int) {
	if n <= 0 || !st.outModeled() {
		return
	}
	req := st.r.req
	req.outBusy = append(req.outBusy, st.sendBuf(size))
	if !req.outHeader {
		req.outHeader = true
		// headerSize's, with nginx's version in Server (server_tokens'
		// default) and default_type's text/plain when none is set
		req.outPending += st.headerSize() + int64(len("/1.22.1"))
		if req.RespHeader.Get("Content-Type") == "" {
			req.outPending += int64(len("Content-Type: text/plain\r\n"))
		}
		if req.RespHeader.Get("Connection") == "" {
			req.outPending += int64(len("Connection: keep-alive\r\n"))
		}
		if st.outChunked() {
			req.outPending += int64(len("Transfer-Encoding: chunked\r\n"))
		}
	}
	req.outPending += int64(n)
	if st.outChunked() {
		req.outPending += int64(len(strconv.FormatInt(int64(n), 16)) + 4) // "<hex>\r\n" data "\r\n"
	}
	if req.outPending >= st.postpone() {
		st.outSent()
	}
}

// outFlush is ngx.flush: its flush buffer joins the output, and all of it
// is sent.
func (st *state) outFlush() {
	if !st.outModeled() {
		return
	}
	req := st.r.req
	req.outBusy = append(req.outBusy, st.sendBuf(0))
	req.outHeader = true
	st.outSent()
}

// outSent puts the buffers sent back on the free list.
func (st *state) outSent() {
	req := st.r.req
	req.freeBufs = append(req.freeBufs, req.outBusy...)
	req.outBusy = req.outBusy[:0]
	req.outPending = 0
}

// outCaptured is a subrequest's body of n bytes captured: the capture
// copies it into a buffer from the parent's free list, and puts the buffer
// back when the subrequest ends (behind the parent's unsent output, if
// any). One buffer per subrequest: the body as one piece.
func (st *state) outCaptured(n int) {
	req := st.r.req
	if n <= 0 || req == nil {
		return
	}
	size := st.sendBuf(n)
	if len(req.outBusy) == 0 {
		req.freeBufs = append(req.freeBufs, size)
	} else {
		req.outBusy = append(req.outBusy, size)
	}
}

// outChunked: the response goes chunked (HTTP/1.1 without Content-Length).
func (st *state) outChunked() bool {
	req := st.r.req
	return req.HTTP != nil && req.HTTP.ProtoAtLeast(1, 1) && req.RespHeader.Get("Content-Length") == ""
}

// echoSize is the size of the buffer ngx.say or ngx.print asks for its
// arguments (ngx.say adds 1): a string's length, but room for a C int
// (11) or a double (25) for a number, "true", "false", "nil" and "null"
// for the others, an array table's elements added up.
func echoSize(L *lua.LState) int {
	n := 0
	for i := 1; i <= L.GetTop(); i++ {
		n += echoValueSize(L.Get(i), 0)
	}
	return n
}

func echoValueSize(v lua.LValue, depth int) int {
	switch x := v.(type) {
	case lua.LString:
		return len(x)
	case lua.LNumber:
		if f := float64(x); f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
			return len("-2147483648")
		}
		return 25 // NGX_DOUBLE_LEN
	case lua.LBool:
		if x {
			return len("true")
		}
		return len("false")
	case *lua.LNilType:
		return len("nil")
	case *lua.LUserData:
		return len("null")
	case *lua.LTable:
		if depth > 100 {
			return 0
		}
		max := 0
		x.ForEach(func(k, _ lua.LValue) {
			if kn, ok := k.(lua.LNumber); ok && int(kn) > max {
				max = int(kn)
			}
		})
		n := 0
		for i := 1; i <= max; i++ {
			n += echoValueSize(x.RawGetInt(i), depth+1)
		}
		return n
	}
	return 0
}
