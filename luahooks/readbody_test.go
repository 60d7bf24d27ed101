package luahooks

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// pieceReader returns its pieces one read at a time, as a chunked body
// arrives.
type pieceReader struct{ pieces []string }

func (p *pieceReader) Read(b []byte) (int, error) {
	if len(p.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.pieces[0])
	if p.pieces[0] = p.pieces[0][n:]; p.pieces[0] == "" {
		p.pieces = p.pieces[1:]
	}
	return n, nil
}

// chunkedRequest is a POST whose body net/http would give with unknown
// length (Transfer-Encoding: chunked), one read per piece.
func chunkedRequest(pieces ...string) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	r.Body = io.NopCloser(&pieceReader{pieces: pieces})
	return r
}

var tooLargeChunkedRE = regexp.MustCompile(`^client intended to send too large chunked body: (\d+)\+(\d+) bytes$`)

// TestReadBodyLimits: ngx.req.read_body obeys the location's
// client_max_body_size and client_body_buffer_size carried by the Request,
// not a process-wide setting (it answered 413 to 2 MiB under
// client_max_body_size 10m and to any chunked body over 1m under
// client_max_body_size 0). The expected answers were measured on nginx
// 1.22 + lua-nginx-module (test/testdata/lua/readbody_limits.case).
func TestReadBodyLimits(t *testing.T) {
	const src = `ngx.req.read_body() local d = ngx.req.get_body_data() ngx.say(d and #d or "nil")`
	sized := func(n int) *http.Request {
		return httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", n)))
	}
	chunks := func(n, size int) *http.Request {
		var pieces []string
		for ; n > 0; n -= size {
			pieces = append(pieces, strings.Repeat("y", min(n, size)))
		}
		return chunkedRequest(pieces...)
	}
	tests := []struct {
		name       string
		r          *http.Request
		limit, buf int64
		want       string // body, or "413"
	}{
		{"sized 2m under 10m", sized(2 << 20), 10 << 20, 10 << 20, "2097152\n"},
		{"chunked 2m under 10m", chunks(2<<20, 64<<10), 10 << 20, 10 << 20, "2097152\n"},
		{"chunked 2m, no limit", chunks(2<<20, 1<<20), 0, 4 << 20, "2097152\n"},
		{"sized 2m, no limit", sized(2 << 20), 0, 4 << 20, "2097152\n"},
		// nginx refuses a declared length over the limit when it picks the
		// location; read_body itself does not (a named location reads it).
		{"sized over the limit", sized(2000), 1000, 0, "2000\n"},
		{"chunked at the limit", chunks(1000, 1000), 1000, 0, "1000\n"},
		{"chunked at the limit in pieces", chunks(1000, 100), 1000, 0, "1000\n"},
		{"chunked past the limit", chunks(1001, 1001), 1000, 0, "413"},
		{"chunked past the limit in pieces", chunks(1200, 100), 1000, 0, "413"},
		{"chunked, empty", chunkedRequest(), 1000, 0, "nil\n"},
		// client_body_buffer_size (default 8k): nginx sizes the buffer of a
		// declared length up to a quarter larger; a larger body goes to a
		// temp file and get_body_data gives nil.
		{"sized fits the buffer", sized(10240), 0, 0, "10240\n"},
		{"sized in a file", sized(10241), 0, 0, "nil\n"},
		{"chunked fits the buffer", chunks(8192, 4096), 0, 0, "8192\n"},
		{"chunked in a file", chunks(8193, 4096), 0, 0, "nil\n"},
		{"chunked fits a larger buffer", chunks(16<<10, 4096), 0, 16 << 10, "16384\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, sink := newTestRuntime(t, Options{})
			req := &Request{HTTP: tc.r, ClientMaxBodySize: tc.limit, ClientBodyBufferSize: tc.buf}
			out := runCode(t, rt, PhaseContent, src, req)
			if tc.want != "413" {
				if out.Action != Respond || string(out.Body) != tc.want {
					t.Errorf("got %v %d %q (%v), want %q", out.Action, out.Status, out.Body, out.Err, tc.want)
				}
				return
			}
			if out.Action != ErrorPage || out.Status != 413 || out.Body != nil || out.Err == nil {
				t.Fatalf("got %+v, want the 413 page and a log line", out)
			}
			if text := sink.text(); text != "" {
				t.Errorf("luahooks logged (the caller logs Err, with the request):\n%s", text)
			}
			m := tooLargeChunkedRE.FindStringSubmatch(out.Err.Error())
			if m == nil {
				t.Fatalf("Err %q", out.Err)
			}
			before, _ := strconv.ParseInt(m[1], 10, 64)
			read, _ := strconv.ParseInt(m[2], 10, 64)
			if before > tc.limit || before+read <= tc.limit {
				t.Errorf("Err %q: want the bytes before the limit plus the read that crossed it", out.Err)
			}
		})
	}
}

// TestNeedRequestBodyTooLarge: when ReadBody (lua_need_request_body) finds
// the chunked body too large, the next rewrite, access or content chunk
// answers 413 without running, as nginx's handler does; set_by_lua runs
// as usual and leaves the answer to the next handler.
func TestNeedRequestBodyTooLarge(t *testing.T) {
	rt, sink := newTestRuntime(t, Options{})
	req := &Request{HTTP: chunkedRequest(strings.Repeat("x", 600), strings.Repeat("x", 600)), ClientMaxBodySize: 1000}
	status, err := rt.ReadBody(req)
	if status != 413 || err == nil || err.Error() != "client intended to send too large chunked body: 600+600 bytes" {
		t.Fatalf("ReadBody: %d %v", status, err)
	}
	if status, err := rt.ReadBody(req); status != 0 || err != nil {
		t.Errorf("second ReadBody: %d %v", status, err)
	}
	set, err := rt.CompileInline(PhaseSet, `return "set ran"`, "nginx.conf", 1)
	if err != nil {
		t.Fatal(err)
	}
	if out := rt.Run(context.Background(), set, req); out.Err != nil || out.Value != "set ran" {
		t.Errorf("set_by_lua: %+v", out)
	}
	out := runCode(t, rt, PhaseAccess, `ngx.log(ngx.ERR, "access ran")`, req)
	if out.Action != ErrorPage || out.Status != 413 || out.Err != nil {
		t.Errorf("access: got %+v, want the 413 page", out)
	}
	if text := sink.text(); text != "" {
		t.Errorf("the chunk ran or luahooks logged (the caller logs ReadBody's error):\n%s", text)
	}
}

// TestReqSocketClientAborted: ngx.req.socket() reads fail with "client
// aborted" (and what came) when the client closes before the declared
// length, with "closed" past the end of a complete body.
func TestReqSocketClientAborted(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	src := `local sock = ngx.req.socket()
		local res, err, part = sock:receive("*a")
		ngx.say(tostring(res), " ", tostring(err), " ", tostring(part))
		res, err, part = sock:receive(1)
		ngx.say(tostring(res), " ", tostring(err), " ", tostring(part))`
	r := httptest.NewRequest("POST", "/t", io.MultiReader(strings.NewReader("hello"), iotest.ErrReader(io.ErrUnexpectedEOF)))
	r.ContentLength = 100
	req := newReq("/t")
	req.HTTP = r
	out := runCode(t, rt, PhaseContent, src, req)
	if got := string(out.Body); got != "nil client aborted hello\nnil closed nil\n" {
		t.Errorf("aborted: %q %v", got, out.Err)
	}
	r = httptest.NewRequest("POST", "/t", strings.NewReader("hello"))
	r.ContentLength = 5
	req = newReq("/t")
	req.HTTP = r
	out = runCode(t, rt, PhaseContent, src, req)
	if got := string(out.Body); got != "hello nil nil\nnil closed \n" {
		t.Errorf("complete: %q %v", got, out.Err)
	}
}
