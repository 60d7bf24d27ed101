package luahooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"

	lua "github.com/yuin/gopher-lua"
)

// ErrClientClosed is the body read error of a client that closed the
// connection before sending the whole body; nginx logs it at info level.
var ErrClientClosed = errors.New("client prematurely closed connection")

// ErrClientTimedOut is the body read error of a client that sent nothing
// for client_body_timeout (nginx answers 408, that is, closes).
var ErrClientTimedOut = errors.New("client timed out (110: Connection timed out) while reading client request body")

// newBody is a request body being built by ngx.req.init_body,
// append_body and finish_body (lua-nginx-module's
// ngx_http_lua_req_body.c). nginx fills a buffer of the given size and
// writes it to a temp file when it overflows; a size of 0 writes every
// append to the file. Here the bytes stay in memory and inFile records
// where nginx would have them, which decides what get_body_data and
// get_body_file answer.
type newBody struct {
	data   []byte
	size   int64 // the buffer nginx allocates
	inFile bool  // nginx wrote (part of) it to its temp file
}

// append adds p as nginx does: the buffer takes what fits, and a full
// buffer goes to the file before it takes more.
func (b *newBody) append(p []byte) {
	if b.size == 0 {
		b.inFile = b.inFile || len(p) > 0
	} else if int64(len(b.data)+len(p)) > b.size {
		b.inFile = true
	}
	b.data = append(b.data, p...)
}

// reqInitBody is ngx.req.init_body(size?): a new, empty body whose buffer
// is size bytes (default client_body_buffer_size) replaces the one read.
func (st *state) reqInitBody(L *lua.LState) int {
	if n := L.GetTop(); n > 1 {
		cError(L, "expecting 0 or 1 argument but seen %d", n)
	}
	req := st.request(L)
	if !req.bodyRead || req.bodyDiscarded && !req.readAfterDiscard {
		cError(L, "request body not read yet")
	}
	size := req.ClientBodyBufferSize
	switch {
	case size == ClientBodyBufferZero:
		size = 0
	case size <= 0:
		size = defaultClientBodyBufferSize
	}
	if L.GetTop() == 1 {
		n := L.CheckInt64(1)
		if n < 0 {
			cError(L, "bad size argument: %d", n)
		}
		size = n
	}
	req.building = &newBody{size: size}
	req.HTTP.ContentLength = 0
	return 0
}

// reqAppendBody is ngx.req.append_body(data).
func (st *state) reqAppendBody(L *lua.LState) int {
	if n := L.GetTop(); n != 1 {
		cError(L, "expecting 1 arguments but seen %d", n)
	}
	data := L.CheckString(1)
	req := st.request(L)
	if req.building == nil {
		cError(L, "request_body not initialized")
	}
	req.building.append([]byte(data))
	return 0
}

// reqFinishBody is ngx.req.finish_body(): the body built becomes the
// request's, with a Content-Length header of its size.
func (st *state) reqFinishBody(L *lua.LState) int {
	if n := L.GetTop(); n != 0 {
		cError(L, "expecting 0 argument but seen %d", n)
	}
	req := st.request(L)
	b := req.building
	if b == nil {
		cError(L, "request_body not initialized")
	}
	req.setBody(b.data, b.inFile)
	return 0
}

// setBody makes data the request body, in nginx's temp file when inFile,
// with a Content-Length header of its size.
func (req *Request) setBody(data []byte, inFile bool) {
	req.body, req.bodyFile, req.bodyPath = data, inFile, ""
	req.HTTP.Body = io.NopCloser(bytes.NewReader(data))
	req.HTTP.ContentLength = int64(len(data))
	req.HTTP.Header.Set("Content-Length", strconv.Itoa(len(data)))
}

// reqGetBodyFile is ngx.req.get_body_file(): the name of the file holding
// a body that did not fit client_body_buffer_size (nil for one in
// memory). ngxsockify keeps bodies in memory, so the file is written on
// the first call, with nginx's warning, and removed when the request ends.
func (st *state) reqGetBodyFile(L *lua.LState) int {
	req := st.request(L)
	if !req.bodyRead || !req.bodyFile {
		L.Push(lua.LNil)
		return 1
	}
	if req.bodyPath == "" {
		path, err := writeBodyFile(req.HTTP.Context(), req.BodyTempPath, req.body)
		if err != nil {
			st.logf(ngxlog.Crit, "%s", err)
			L.Push(lua.LNil)
			return 1
		}
		st.logf(ngxlog.Warn, "a client request body is buffered to a temporary file %s", path)
		req.bodyPath = path
	}
	L.Push(lua.LString(req.bodyPath))
	return 1
}

// reqSetBodyFile is ngx.req.set_body_file(path [, auto_clean]): the body
// becomes the file's content, read from the file as get_body_file names
// it (ngxsockify holds it in memory); auto_clean removes the file when
// the request ends.
func (st *state) reqSetBodyFile(L *lua.LState) int {
	if n := L.GetTop(); n != 1 && n != 2 {
		cError(L, "expecting 1 or 2 arguments but seen %d", n)
	}
	req := st.request(L)
	if !req.bodyRead {
		cError(L, "request body not read yet")
	}
	path := L.CheckString(1)
	clean := L.OptBool(2, false)
	data, err := os.ReadFile(path)
	if err != nil {
		cError(L, `open() "%s" failed`, path)
	}
	req.setBody(data, true)
	req.bodyPath = path
	if clean {
		context.AfterFunc(req.HTTP.Context(), func() { os.Remove(path) })
	}
	return 0
}

// writeBodyFile writes data to a new file that is removed when ctx (the
// request's) ends: in client_body_temp_path as nginx names its files
// (nginxconf.TempPath.WriteFile), or in the system's temp directory without
// one.
func writeBodyFile(ctx context.Context, tp nginxconf.TempPath, data []byte) (string, error) {
	path, err := tp.WriteFile(data)
	if err != nil {
		return "", err
	}
	context.AfterFunc(ctx, func() { os.Remove(path) })
	return path, nil
}
