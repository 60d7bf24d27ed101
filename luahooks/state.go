package luahooks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"ngxsockify/internal/certcheck"
	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// VarStore is ngx.var: one request's nginx variables.
type VarStore interface {
	// Get returns the value; false means the variable is undefined or has
	// no value (ngx.var.x is nil).
	Get(name string) (string, bool)
	// Set writes a variable, with nginx's errors (`variable "x" not found
	// for writing; ...`, `variable "uri" not changeable`).
	Set(name, value string) error
	// Unset gives a variable no value (ngx.var.x = nil).
	Unset(name string) error
}

// Request is what a chunk sees of one HTTP request. The same Request is
// passed to every phase of the request so that ngx.ctx survives between
// phases. A Request is used by one goroutine at a time.
type Request struct {
	HTTP       *http.Request // ngx.req.* read it; set_header/clear_header change HTTP.Header
	Vars       VarStore      // ngx.var; nil means no variables
	RespHeader http.Header   // ngx.header; created on first write when nil
	Status     int           // ngx.status (read/write); 0 until something sets it
	Args       []string      // ngx.arg for set_by_lua
	// NoteHeader, when set, is told of each response header an ngx.header
	// write sets (set) or clears (!set), and of ngx.redirect's Location,
	// in the order of the writes: lua-nginx-module adds a new name to the
	// end of nginx's header list (a name already there keeps its place,
	// one cleared is set again last), and the caller sends them in that
	// order.
	NoteHeader func(name string, set bool)
	// DefaultType is the Content-Type nginx would send when Lua sets none
	// (types by extension, else default_type). ngx.header.content_type
	// reads it once output has started (nginx has sent the headers then);
	// before that it reads nil, as in nginx.
	DefaultType string
	// NoHTTP10Buffering is lua_http10_buffering off: HTTP/1.0 output goes
	// out as it comes (headers without a length), as on HTTP/1.1.
	NoHTTP10Buffering bool
	// NoDefaultType: the hook cleared ngx.header.content_type, so the
	// response goes out without Content-Type (no default_type), as in
	// nginx.
	NoDefaultType bool
	// Capture runs ngx.location.capture subrequests; nil makes them raise
	// "not supported" (500).
	Capture CaptureFunc
	// OnWait, when set, is called each time a run of this request starts
	// to wait (ngx.sleep, a cosocket, a capture...): the caller runs
	// subrequests side by side, the next starting once this one waits.
	OnWait func()
	// Internal is ngx.req.is_internal(): the request went through an
	// internal redirect (ngx.exec, error_page, rewrite ... last, ...) or is
	// a subrequest. The caller keeps it up to date.
	Internal bool
	// Subrequest is ngx.is_subrequest.
	Subrequest bool
	// Log, when set, writes the error-log lines of this request's runs
	// (ngx.log, print, API warnings) in place of Options.Log, so that they
	// carry the request's context (", client: ..., request: ...").
	Log func(level ngxlog.Level, msg string)
	// TimerLog, when set, gives the log of a timer this request's hooks
	// create (ngx.timer.at, every), used in place of Options.Log: nginx
	// writes a timer's lines with the creating connection's client and
	// listening addresses (", client: ..., server: 0.0.0.0:80"). It is
	// called once per timer; what it returns may outlive the request.
	TimerLog func() func(level ngxlog.Level, msg string)
	// SetURI, when set, makes uri the request's $uri (ngx.req.set_uri);
	// nil changes HTTP.URL's path instead.
	SetURI func(uri string)
	// SendHeaders, when set, is called once when a hook sends the
	// response headers, before the hook goes on: its first ngx.say,
	// ngx.print, ngx.send_headers, ngx.flush or ngx.eof, except on
	// HTTP/1.0 (lua_http10_buffering holds everything back). The caller
	// sends Status and RespHeader through its header filters then, as
	// nginx does (header_filter_by_lua runs in the middle of the hook,
	// and what it changes is seen by the rest of the hook). It reports
	// false when a header filter ended the request with an error status
	// instead (If-Unmodified-Since: 412): the output call that sent them
	// answers nil, "nginx output filter error".
	SendHeaders func() bool
	// Flush, when set, sends output the hook has produced so far to the
	// client before the hook goes on (after SendHeaders): it is called
	// at ngx.flush and ngx.eof, and when a thread of the hook waits
	// (ngx.sleep, a cosocket, ngx.thread.wait) with postpone_output's
	// 1460 bytes or more pending, as nginx's write filter sends them.
	// Outcome.Body then holds only what came after the last call. Nil
	// keeps all output for Outcome.Body.
	Flush func(p []byte)
	// FlushDelayed, when set, tells after Flush whether the client's
	// connection held the write back (limit_rate), as nginx's flags
	// show it: c->buffered and c->write->delayed. ngx.flush(true) then
	// logs that it waits (debug).
	FlushDelayed func() (buffered uint, delayed bool)
	// PostponeOutput is postpone_output when PostponeSet (else nginx's
	// default, 1460): once the headers are out, ngx.say and ngx.print
	// hand output of that many bytes or more to Flush at once, as nginx's
	// write filter sends it, and headers that long go by themselves.
	PostponeOutput int64
	PostponeSet    bool
	// WriteFailed, when set, reports whether a write to the client made
	// by Flush failed (the client reset the connection): output calls
	// answer nil, "nginx output filter error" from then on.
	WriteFailed func() bool
	// Finish, when set, ends the response to the client at ngx.eof under
	// a small postpone_output (the last chunk goes at once, as nginx's
	// write filter sends it), when nothing after the hook still writes
	// to it (body filters, compression); WriteFailed then says whether
	// that write failed.
	Finish func()
	// Streamed counts the output bytes handed to Flush so far.
	Streamed int64
	// WatchClient is lua_check_client_abort on (nil: off, and
	// ngx.on_abort says so). While all the threads of a rewrite, access
	// or content run wait, the run watches the client's connection with
	// it: it calls gone, once, if the client closes the connection before
	// stop is called (and must not read what the client sends, nor watch
	// while the body is being read). Then "client prematurely closed
	// connection" is logged (info) and the handler ngx.on_abort
	// registered runs as a user thread of the run, or, without one, the
	// run ends at once with Close 499, as nginx finalizes the request
	// with 499.
	WatchClient func(gone func()) (stop func())
	// RawSocket, when set, takes the client connection over for
	// ngx.req.socket(true): the caller's response is off (it sends
	// nothing more, and closes the connection when the request ends);
	// br holds what the client sent after the request head and what was
	// not read of its body. Nil makes ngx.req.socket(true) fail.
	RawSocket func() (c net.Conn, br *bufio.Reader, err error)
	// MainHTTP is the main request of a subrequest: ngx.req.raw_header
	// reads its header, as nginx does (nil: HTTP is the main request).
	MainHTTP *http.Request
	// HeaderOrder is where set_header and clear_header left the values of
	// HTTP.Header in nginx's header list (nil: none changed); a
	// subrequest starts with a Clone of its parent's.
	HeaderOrder *HeaderOrder

	// ClientMaxBodySize is the location's client_max_body_size. Reading a
	// chunked body (ngx.req.read_body, ReadBody) answers 413 as soon as it
	// passes this size. Zero means no limit, as in nginx. A body of
	// declared length is not checked here: nginx refuses it when it picks
	// the location (named locations do not check it at all).
	ClientMaxBodySize int64
	// Resolve looks a host name up with the location's `resolver`, for
	// cosockets; nil means none is configured (connect then answers "no
	// resolver defined to resolve ...", as OpenResty does).
	Resolve func(ctx context.Context, host string) ([]string, error)
	// TrustedCAs verify cosocket peers in sslhandshake(..., true): the
	// self-signed certificates of the location's
	// lua_ssl_trusted_certificate; nil trusts none, as in OpenResty.
	TrustedCAs *x509.CertPool
	// SSLProtocols and SSLCiphers are the location's lua_ssl_protocols
	// (nil: nginxconf.ProtocolRange's default) and lua_ssl_ciphers' suites
	// (nil: DEFAULT's).
	SSLProtocols []string
	SSLCiphers   []uint16
	// SSLChain is what is checked of a chain TrustedCAs verified:
	// lua_ssl_verify_depth, lua_ssl_crl, and the file's certificates that
	// are not self-signed (nil: a depth of 1, no CRL).
	SSLChain *certcheck.Chain
	// Socket is the location's lua_socket_* settings.
	Socket SocketOptions
	// ClientBodyBufferSize is the location's client_body_buffer_size: a
	// body that does not fit (nginx writes it to a temp file) reads as nil
	// from ngx.req.get_body_data. Zero means nginx's default on x86-64, 8k;
	// ClientBodyBufferZero is client_body_buffer_size 0.
	ClientBodyBufferSize int64
	// BodyInFileOnly is client_body_in_file_only on (or clean): a body
	// read is in nginx's temp file whatever its size.
	BodyInFileOnly bool
	// BodyTempPath is client_body_temp_path, where get_body_file writes
	// a body nginx would keep in a file (no Dir: the system's temp
	// directory).
	BodyTempPath nginxconf.TempPath
	// KeepUnderscores: lua_transform_underscores_in_response_headers off,
	// ngx.header names keep their '_'.
	KeepUnderscores bool

	// Balancer is the upstream attempt of a balancer_by_lua run (nil in
	// the other phases).
	Balancer *Balancer

	luaCtx   *lua.LTable // ngx.ctx
	body     []byte      // request body once read
	bodyRead bool
	bodyFile bool       // body did not fit client_body_buffer_size
	bodyPath string     // the temp file get_body_file wrote, "" before
	building *newBody   // ngx.req.init_body's body until finish_body
	filter   *filterArg // ngx.arg in body_filter_by_lua
	// headersOut: SendHeaders was called (once per request).
	headersOut bool
	// headPushed: the headers went to the client by themselves, as
	// nginx's write filter sends them when they reach postpone_output.
	headPushed bool
	// rawSocket: ngx.req.socket(true) took the connection.
	rawSocket bool
	// onAbort: ngx.on_abort registered a handler (once per request).
	onAbort bool
	// clientGone, made when ngx.on_abort registers, is closed when the
	// watch (WatchClient) sees the client go; goneSeen: it did, no more
	// watching.
	clientGone chan struct{}
	goneSeen   atomic.Bool
	// readingBody: a light thread waits in ngx.req.read_body.
	readingBody bool
	// bodyDiscarded: ngx.req.discard_body dropped it; readAfterDiscard:
	// ngx.req.read_body was called after that ($request_body is then "",
	// nil before: measured).
	bodyDiscarded, readAfterDiscard bool
	bodyErr                         *Outcome // ReadBody's answer (413...), for the next Lua handler
	// freeBufs are the sizes of the send buffers lua-nginx-module keeps
	// in the request's free list (ctx->free_bufs) once a cosocket sent
	// them; the last one is the list's head (debug log lines only).
	freeBufs []int
	start    time.Time
}

// Action says what the caller does after a run.
type Action int

// Actions.
const (
	// Continue: go on with the next phase (the chunk fell off its end,
	// returned, or called ngx.exit(ngx.OK) / ngx.exit(ngx.DECLINED)). For
	// content and set chunks the caller still uses Body / Value.
	Continue Action = iota
	// Respond: send Status, RespHeader and Body (output from ngx.say /
	// ngx.print, or ngx.exit(2xx) with Body nil meaning headers only).
	Respond
	// ErrorPage: answer Status with nginx's standard page (ngx.exit(>=300),
	// a runtime error (Err set), a load error).
	ErrorPage
	// Redirect: ngx.redirect; Status is the code, RespHeader holds Location.
	Redirect
	// Close: close the connection without a response (ngx.exit(444),
	// ngx.exit(499), ngx.exit(ngx.ERROR)). When Body is non-nil (a runtime
	// error after ngx.say/ngx.print: nginx had streamed the output), send
	// Status, headers and Body first, then abort the connection without
	// finishing the response.
	Close
	// Exec: ngx.exec; the caller redirects internally to ExecURI with
	// ExecArgs as $args (a URI starting with "@" is a named location).
	// ngx.ctx does not survive it (Request.ResetCtx).
	Exec
)

var actionNames = [...]string{"Continue", "Respond", "ErrorPage", "Redirect", "Close", "Exec"}

// String returns the action's name ("Continue", ...).
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return fmt.Sprintf("Action(%d)", int(a))
	}
	return actionNames[a]
}

// Outcome is the result of one run.
type Outcome struct {
	Action Action
	Status int
	Body   []byte
	// Value is the result of a set_by_lua chunk (its first return value,
	// converted to a string; "" for nil).
	Value string
	// ExecURI and ExecArgs are where ngx.exec goes (Action Exec).
	ExecURI, ExecArgs string
	// URIJump: ngx.req.set_uri(uri, true) ended a rewrite_by_lua chunk
	// (Action Continue); the caller searches the locations again for the
	// new $uri, as after "rewrite ... last".
	URIJump bool
	// Err is set for runtime errors, timeouts and load errors: Action is
	// then ErrorPage (Status 500, or 404 for a missing file), or Close for
	// an error after output was produced. ngx.req.read_body sets it too:
	// ErrorPage 413 for a body over client_max_body_size, Close 400 when
	// reading failed. Err.Error() is the error-log line nginx writes, e.g.
	// "lua entry thread aborted: runtime error:
	// access_by_lua(nginx.conf:25):4: boom". Luahooks does not log it
	// itself.
	Err error
}

// ErrTimeout is wrapped by Outcome.Err when a run exceeded its time limit.
var ErrTimeout = errors.New("lua execution timed out")

// state is one pooled Lua state and the per-run context its Go functions
// consult.
type state struct {
	rt *Runtime
	L  *lua.LState
	// r is the run that holds the state now: &reqRun for a request's
	// run, a timer's own runCtx while its callback runs (timer.go).
	r      *runCtx
	reqRun runCtx

	ctx      *runContext                           // reused by every run of this state
	fns      map[*lua.FunctionProto]*lua.LFunction // chunk functions made in this state
	ngx      *lua.LTable
	ngxMeta  *lua.LTable
	argTable *lua.LTable
	null     *lua.LUserData
	inInit   bool
	// replaying is set while init_by_lua chunks are re-run in a new pooled
	// state: they rebuild globals, but shared-dict writes and log lines
	// already happened once (nginx runs init_by_lua once per master).
	replaying bool
	// socketMeta is the cosockets' metatable (cosocket.go).
	// requiring counts the module bodies running (require); semSeen
	// counts ngx.semaphore.new calls by position while they do
	// (semaphore.go).
	requiring int
	// noYield counts xpcall handlers running (libs.go); cannotYield: a
	// wait was refused there or in a module's body (blockFor).
	noYield     int
	cannotYield bool
	semSeen     map[string]int
	socketMeta  *lua.LTable
	reqSockMeta *lua.LTable // ngx.req.socket()'s
	rawSockMeta *lua.LTable // ngx.req.socket(true)'s
	udpMeta     *lua.LTable
	// busy is the state's baton: held by the run whose Lua runs now (a
	// request's run or a timer callback). A run hands it on while it
	// waits (block), so that the timers it created run meanwhile, as in
	// nginx's one Lua VM per worker (timer.go). timers and parked are
	// guarded by rt.timers.mu: the state's pending timers, and whether it
	// left the pool and is to be closed when they end.
	busy   sync.Mutex
	timers int
	parked bool
	// idleCos are coroutines that timer callbacks ran on, for the next.
	idleCos []*lua.LState
}

// runCtx is the state of the current run.
type runCtx struct {
	req   *Request
	phase Phase
	ctx   *runContext
	// L is the run's entry coroutine: the state's main thread for a
	// request, a coroutine of its own for a timer callback; cur is the
	// coroutine that ran when the run handed the state on (block).
	L, cur *lua.LState
	// unwatch stops the watch of the client (lua_check_client_abort)
	// that leave started.
	unwatch func()
	// sched is the run's light threads (thread.go), nil without; sockets
	// and udpSockets are the cosockets the run opened (closed at its end
	// unless pooled).
	sched      *sched
	sockets    []*cosocket
	udpSockets []*udpSocket
	now        time.Time
	exited     bool
	exitCode   int
	redirect   bool
	exec       bool // ngx.exec: execURI, execArgs
	jump       bool // ngx.req.set_uri(uri, true)
	execURI    string
	execArgs   string
	sent       bool // output started (ngx.say/print/flush): headers are "sent"
	eof        bool
	body       bytes.Buffer
	bodyErr    *Outcome // read_body decided the response (413...)
	errMsg     string   // error raised by our API (returned when it escapes)
	// wrapErrs counts the errors coroutine.wrap raised again in a caller;
	// wrapChain is how many coroutines the last of them went up through
	// (errorTraceback).
	wrapErrs, wrapChain int
}

type exitSignal struct{}

// ResetCtx forgets ngx.ctx, as nginx does on an internal redirect
// (ngx.exec): the module contexts of the request are cleared.
func (r *Request) ResetCtx() { r.luaCtx = nil }

// End is the request's end (nginx's request cleanup, after the log
// phase): when its hooks used ngx.ctx, its release is logged (debug), as
// lua-nginx-module does.
func (r *Request) End() {
	if r.luaCtx != nil && r.Log != nil {
		r.Log(ngxlog.Debug, "lua release ngx.ctx at ref 1")
	}
	r.luaCtx = nil
}

// compileLua compiles Lua source; file is set for code read from a file
// (*_by_lua_file, require), whose first line may be a shebang.
func compileLua(src, name string, file bool) (*lua.FunctionProto, error) {
	src, err := luajitSource(src, name, file)
	if err != nil {
		return nil, err
	}
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		return nil, syntaxError(name, src, err)
	}
	splitMultiAssign(chunk)
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, syntaxError(name, src, err)
	}
	recordNames(name, chunk)
	return proto, nil
}

// syntaxError rewrites gopher-lua's parser message into Lua's
// "<chunk>:<line>: <msg> near '<token>'" shape.
func syntaxError(name, src string, err error) error {
	var pe *parse.Error
	if errors.As(err, &pe) {
		pe.Token = stringToken(src, pe)
		msg := pe.Message
		if msg == "syntax error" || msg == "" {
			msg = "unexpected symbol"
			if hint := unclosedBracket(src, pe.Pos.Line, pe.Pos.Column, pe.Token); hint != "" {
				msg = hint
			}
		}
		if pe.Pos.Line == parse.EOF {
			// LuaJIT names the last line, and a bracket left open
			if msg == "unexpected symbol" {
				if hint := unclosedBracket(src, eofLine, 0, "<eof>"); hint != "" {
					msg = hint
				}
			}
			return fmt.Errorf("%s:%d: %s near '<eof>'", name, strings.Count(src, "\n")+1, msg)
		}
		if pe.Token == "" {
			return fmt.Errorf("%s:%d: %s", name, pe.Pos.Line, msg)
		}
		return fmt.Errorf("%s:%d: %s near '%s'", name, pe.Pos.Line, msg, pe.Token)
	}
	if le, ok := err.(*lua.CompileError); ok {
		return fmt.Errorf("%s:%d: %s", name, le.Line, le.Message)
	}
	return fmt.Errorf("%s: %v", name, err)
}

// stringToken gives a string token back its quotes or long brackets, as
// LuaJIT shows it: for the statement "'for end';" the message ends in
// near, a quote, then 'for end' with its own quotes, then a quote.
// gopher-lua reports the contents only, at the position of the last byte.
func stringToken(src string, pe *parse.Error) string {
	lines := strings.Split(src, "\n")
	if pe.Pos.Line < 1 || pe.Pos.Line > len(lines) {
		return pe.Token
	}
	line := lines[pe.Pos.Line-1]
	end := pe.Pos.Column // 1-based: the token's last byte
	if end < 1 || end > len(line) {
		return pe.Token
	}
	switch q := line[end-1]; q {
	case '"', '\'':
		for i := end - 2; i >= 0; i-- {
			if line[i] == q && (i == 0 || line[i-1] != '\\') {
				if line[i+1:end-1] == pe.Token || strings.Contains(line[i+1:end-1], "\\") {
					return line[i:end]
				}
				break
			}
		}
	case ']':
		if tok := "[[" + pe.Token + "]]"; strings.HasSuffix(line[:end], tok) {
			return tok
		}
	}
	return pe.Token
}

func (rt *Runtime) newState() (*state, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 200, RegistrySize: 1024 * 4, RegistryMaxSize: 1024 * 256})
	st := &state{rt: rt, L: L, ctx: newRunContext(), fns: map[*lua.FunctionProto]*lua.LFunction{}}
	st.r = &st.reqRun
	st.reqRun.L = L
	st.openLibs()
	rt.mu.Lock()
	inits := append([]*Chunk(nil), rt.inits...)
	failed := maps.Clone(rt.failedInits)
	rt.mu.Unlock()
	st.replaying = true
	for _, c := range inits {
		if err := st.runInit(c, rt.timeout); err != nil && !failed[c] {
			L.Close()
			return nil, err
		}
	}
	st.replaying = false
	st.guardGlobals()
	return st, nil
}

// runInit runs an init chunk in this state.
func (st *state) runInit(c *Chunk, timeout time.Duration) error {
	return st.runInitReq(c, timeout, &Request{})
}

// runInitReq runs an init chunk with req (init_worker: the http block's
// settings, Options.MainRequest).
func (st *state) runInitReq(c *Chunk, timeout time.Duration, req *Request) error {
	st.inInit = true
	defer func() { st.inInit = false }()
	out := st.run(context.Background(), c, req, timeout)
	if out.Err != nil {
		return out.Err
	}
	return nil
}

func (st *state) run(parent context.Context, c *Chunk, req *Request, timeout time.Duration) Outcome {
	L := st.L
	st.r = &st.reqRun
	r := st.r
	r.body.Reset()
	*r = runCtx{body: r.body, req: req, phase: c.phase, now: time.Now(), L: L,
		sockets: r.sockets[:0], udpSockets: r.udpSockets[:0]}
	L.G.CurrentThread = L // a timer's coroutine may have run last
	if req.start.IsZero() {
		req.start = r.now
	}
	if err := parent.Err(); err != nil {
		r.req = nil
		return Outcome{Action: Close, Status: 499, Err: err}
	}
	ctx := st.ctx
	ctx.arm(parent, r.now, timeout)
	st.rt.guard.enter(ctx)
	defer st.rt.guard.leave(ctx)
	r.ctx = ctx
	L.SetContext(ctx)
	fn := st.fns[c.proto]
	if fn == nil {
		fn = L.NewFunctionFromProto(c.proto)
		if st.rt.opts.CodeCache {
			st.fns[c.proto] = fn
		}
	}
	L.Push(fn)
	var err error
	if c.phase == PhaseSet {
		// set_by_lua passes its arguments as ngx.arg and as "...";
		// empty values arrive as nil (measured on lua-nginx-module).
		for _, a := range req.Args {
			if a == "" {
				L.Push(lua.LNil)
			} else {
				L.Push(lua.LString(a))
			}
		}
		err = L.PCall(len(req.Args), 1, nil)
	} else if c.phase == PhaseBodyFilter {
		// The headers are out; the chunk's return value may be ngx.ERROR.
		r.sent = true
		err = L.PCall(0, 1, nil)
		if n, ok := L.Get(-1).(lua.LNumber); ok && err == nil && req.filter != nil {
			req.filter.rc = int(n)
		}
	} else {
		err = L.PCall(0, 0, nil)
	}
	ctxErr := ctx.Err()
	st.endThreads(err != nil || r.exited || ctxErr != nil)
	if ctxErr == nil {
		ctxErr = ctx.Err() // a user thread's ngx.exit, the time limit
	}
	ctx.disarm()
	st.closeSockets()
	L.RemoveContext()
	r.ctx = nil
	var value string
	if c.phase == PhaseSet && err == nil {
		v := L.Get(-1)
		L.Pop(1)
		if v != lua.LNil {
			value = st.toStr(v)
		}
	}
	L.SetTop(0)
	out := st.outcome(c, err, ctxErr)
	out.Value = value
	r.req = nil
	return out
}

func (st *state) outcome(c *Chunk, err error, ctxErr error) Outcome {
	r := st.r
	req := r.req
	status := req.Status
	if r.bodyErr != nil {
		return *r.bodyErr
	}
	if r.exited {
		code := r.exitCode
		if r.jump {
			return Outcome{Action: Continue, Status: status, URIJump: true}
		}
		if r.exec {
			return Outcome{Action: Exec, ExecURI: r.execURI, ExecArgs: r.execArgs}
		}
		if r.redirect {
			return Outcome{Action: Redirect, Status: code}
		}
		if r.sent {
			return st.respond()
		}
		switch {
		case code == -5 && c.phase == PhaseContent:
			// ngx.exit(ngx.DECLINED) in a content handler: nginx sends
			// nothing and closes the connection (measured).
			return Outcome{Action: Close, Status: code}
		case code == 0 || code == -5: // ngx.OK, ngx.DECLINED
			if c.phase == PhaseContent {
				return st.respond()
			}
			return Outcome{Action: Continue, Status: status}
		case code == 408 || code == 444 || code == 499 || code < 200:
			// nginx terminates the request for these (ngx_http_finalize_request).
			return Outcome{Action: Close, Status: code}
		case code >= 300 && code < 600:
			return Outcome{Action: ErrorPage, Status: code}
		default:
			if code == http.StatusOK && status != 0 {
				// ngx.exit(200) sends the headers with ngx.status.
				code = status
			}
			return Outcome{Action: Respond, Status: code}
		}
	}
	if err != nil {
		var msg string
		switch {
		case errors.Is(ctxErr, context.DeadlineExceeded):
			msg = fmt.Sprintf("lua entry thread aborted: runtime error: %s: %v (%v)", c.name, ErrTimeout, st.rt.timeout)
			return Outcome{Action: ErrorPage, Status: http.StatusInternalServerError, Err: &runError{msg: msg, err: ErrTimeout}}
		case errors.Is(ctxErr, ErrMemory):
			msg = "lua entry thread aborted: runtime error: " + ErrMemory.Error()
			return Outcome{Action: ErrorPage, Status: http.StatusInternalServerError, Err: &runError{msg: msg, err: ErrMemory}}
		case errors.Is(ctxErr, errClientGone):
			// lua_check_client_abort: nginx finalizes with 499 (the
			// watch logged why).
			return Outcome{Action: Close, Status: 499}
		case ctxErr != nil:
			// The request context ended (client gone, server shutdown).
			return Outcome{Action: Close, Status: 499, Err: ctxErr}
		}
		msg = "lua entry thread aborted: runtime error: " + errorText(err)
		trace := r.errorTraceback(err, false) // the phases that cannot yield
		switch {
		case st.inInit && c.phase == PhaseExitWorker:
			msg = errorText(err) + trace // RunExitWorker adds its kind
		case st.inInit:
			// ngx_http_lua_report's prefix: the directive, with _file
			kind := c.phase.String()
			if c.path != "" {
				kind += "_file"
			}
			msg = kind + " error: " + errorText(err)
		case c.phase == PhaseSet:
			msg = "failed to run set_by_lua*: " + errorText(err) + trace
		case c.phase == PhaseHeaderFilter:
			msg = "failed to run header_filter_by_lua*: " + errorText(err) + trace
		case c.phase == PhaseLog:
			msg = "failed to run log_by_lua*: " + errorText(err) + trace
		case c.phase == PhaseBodyFilter:
			msg = "failed to run body_filter_by_lua*: " + errorText(err) + trace
		case c.phase == PhaseBalancer:
			msg = "failed to run balancer_by_lua*: " + errorText(err) + trace
		default:
			msg += r.errorTraceback(err, true)
		}
		if r.sent {
			// nginx had already sent the headers and the output so far:
			// it can only cut the connection.
			out := st.respond()
			out.Action, out.Err = Close, &runError{msg: msg}
			return out
		}
		return Outcome{Action: ErrorPage, Status: http.StatusInternalServerError, Err: &runError{msg: msg}}
	}
	if r.sent || c.phase == PhaseContent {
		return st.respond()
	}
	return Outcome{Action: Continue, Status: status}
}

func (st *state) respond() Outcome {
	r := st.r
	status := r.req.Status
	if status == 0 {
		status = http.StatusOK
	}
	var body []byte
	if r.body.Len() > 0 || r.sent {
		body = append([]byte{}, r.body.Bytes()...)
	}
	return Outcome{Action: Respond, Status: status, Body: body}
}

type runError struct {
	msg string
	err error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.err }

// errorText extracts the Lua error value: a string as is, other values as
// lua-nginx-module prints them.
func errorText(err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		switch v := ae.Object.(type) {
		case lua.LString:
			return luajitMessage(namedMessage(string(v), ae.StackTrace))
		case lua.LNumber:
			return formatNumber(float64(v))
		case *lua.LNilType:
			return "unknown reason"
		default:
			return "unknown reason"
		}
	}
	return err.Error()
}

// errorTraceback is the traceback OpenResty logs after a runtime error:
// "stack traceback:", then for an entry thread (coroutines) "coroutine 0:"
// (where the error was raised) and one "coroutine N:" per coroutine.wrap
// it went up through, the entry thread last with its frames. gopher-lua unwinds a
// coroutine that fails before its caller sees the error, so only the
// entry thread's frames are known.
func (r *runCtx) errorTraceback(err error, coroutines bool) string {
	var ae *lua.ApiError
	if !errors.As(err, &ae) {
		return ""
	}
	// OpenResty's traceback starts at the coroutine that raised the last
	// error coroutine.wrap passed on, even one a pcall caught since:
	// measured, an error after pcall(coroutine.wrap(f)) failed logs
	// "coroutine 0:" and "coroutine 1:".
	levels := r.wrapChain
	var b strings.Builder
	b.WriteString("\nstack traceback:")
	for i := 0; coroutines && i <= levels; i++ {
		fmt.Fprintf(&b, "\ncoroutine %d:", i)
	}
	for _, line := range strings.Split(ae.StackTrace, "\n") {
		switch {
		case !strings.HasPrefix(line, "\t"), line == "\t[G]: ?":
			continue // the header, gopher-lua's Go caller
		}
		b.WriteString("\n\t" + strings.Replace(line[1:], "[G]:", "[C]:", 1))
	}
	return b.String()
}

// checkRunning raises when the run was stopped (ngx.exit, timeout), so Go
// functions do not continue after the end of a request.
func (st *state) stopped() bool {
	return st.r.ctx != nil && st.r.ctx.Err() != nil
}

// exit ends the request: it records the code, cancels the run's context (a
// cancelled context cannot be swallowed by pcall: every following Lua
// instruction raises again) and unwinds.
func (st *state) exit(code int) {
	r := st.r
	r.exited = true
	r.exitCode = code
	if r.ctx != nil {
		r.ctx.cancel(context.Canceled)
	}
	st.curL().Error(lua.LString("exit"), 0)
}

// cError raises like luaL_error in a C function under LuaJIT
// (lj_err_callermsg): the message carries the position of the caller when
// that is Lua code, none when it is not (pcall(ngx.redirect, ...)).
func cError(L *lua.LState, format string, args ...any) {
	restyError(L, 2, format, args...)
}

// cArgError is luaL_argerror from a C function: LuaJIT names the function
// after the call site, '?' when a C function (pcall) called it.
func cArgError(L *lua.LState, n int, fname, msg string) {
	if !callerIsLua(L) {
		fname = "?"
	}
	cError(L, "bad argument #%d to '%s' (%s)", n, fname, msg)
}

// phaseCheck raises lua-nginx-module's "API disabled" error.
func (st *state) phaseCheck(api string, allowed ...Phase) {
	if st.r.phase == PhaseExitWorker {
		cError(st.curL(), "API disabled in the context of exit_worker_by_lua*")
	}
	if st.inInit && st.r.phase == PhaseInitWorker {
		// init_worker_by_lua has a fake request: its own context's words
		cError(st.curL(), "API disabled in the context of init_worker_by_lua*")
	}
	if st.inInit {
		cError(st.curL(), "API disabled in the context of init_by_lua*")
	}
	for _, p := range allowed {
		if st.r.phase == p {
			return
		}
	}
	if st.r.phase == PhaseTimer {
		cError(st.curL(), "API disabled in the context of ngx.timer")
	}
	cError(st.curL(), "API disabled in the context of %s*", st.r.phase)
}
