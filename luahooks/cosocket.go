package luahooks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	lua "github.com/yuin/gopher-lua"

	"ngxsockify/ngxlog"
)

// ngx.socket.tcp: OpenResty's cosockets on gopher-lua. A cosocket blocks
// its request's goroutine, bounded by its own timeouts (settimeout,
// settimeouts; lua_socket_*_timeout's 60 s by default). Time spent waiting
// on a socket (or in ngx.sleep) does not count against the run's time
// limit, which bounds running Lua only: the limit pauses for the wait.
//
// Results and error strings are OpenResty's: connect gives 1 or nil and
// "connection refused", "timeout", "no resolver defined to resolve ...";
// receive gives nil, "closed" or "timeout" and the partial data. A socket
// not handed to the pool with setkeepalive is closed when the run that
// created it ends (OpenResty: when the request ends).

const (
	socketDefaultTimeout  = 60 * time.Second // lua_socket_{connect,send,read}_timeout
	socketBufferSize      = 4096             // lua_socket_buffer_size
	socketPoolSize        = 30               // lua_socket_pool_size
	socketKeepaliveIdle   = 60 * time.Second // lua_socket_keepalive_timeout
	socketReceiveUntilMax = 1 << 20          // a bound for receiveuntil's search
)

// SocketOptions are a location's lua_socket_* settings; zero values mean
// lua-nginx-module's defaults.
type SocketOptions struct {
	ConnectTimeout, SendTimeout, ReadTimeout time.Duration // lua_socket_*_timeout: 60s
	KeepaliveTimeout                         time.Duration // lua_socket_keepalive_timeout: 60s
	PoolSize                                 int           // lua_socket_pool_size: 30
	BufferSize                               int           // lua_socket_buffer_size: 4k
	QuietErrors                              bool          // lua_socket_log_errors off
}

// socketOptions returns the run's settings with the defaults filled in.
func (st *state) socketOptions() SocketOptions {
	var o SocketOptions
	if st.r.req != nil {
		o = st.r.req.Socket
	}
	for _, d := range []*time.Duration{&o.ConnectTimeout, &o.SendTimeout, &o.ReadTimeout} {
		if *d <= 0 {
			*d = socketDefaultTimeout
		}
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = socketKeepaliveIdle
	}
	if o.PoolSize <= 0 {
		o.PoolSize = socketPoolSize
	}
	if o.BufferSize <= 0 {
		o.BufferSize = socketBufferSize
	}
	return o
}

// sockLogf logs a socket error unless lua_socket_log_errors is off.
func (st *state) sockLogf(L *lua.LState, format string, args ...any) {
	if st.r.req != nil && st.r.req.Socket.QuietErrors {
		return
	}
	st.logf(ngxlog.Err, "%s"+format, append([]any{st.logPrefix(L)}, args...)...)
}

// cosocket is the Go side of one ngx.socket.tcp() object.
type cosocket struct {
	conn   net.Conn
	br     *bufio.Reader
	wr     *waitReader // br's source (nil: the request body's socket)
	key    string      // pool key: "host:port", "unix:path" or the pool option
	reused int
	// created: connect was called once (lua-nginx-module's sock[1]
	// exists); getoption and setoption raise before.
	created bool
	connect time.Duration
	send    time.Duration
	read    time.Duration
	body    bool      // ngx.req.socket(): reads the request body, br over it
	owner   *state    // the state whose run closes it at its end
	bufSize int       // lua_socket_buffer_size
	pool    *connPool // the pool it counts in (came through it), or nil

	// clientCert is setclientcert's, presented by sslhandshake
	// (cosocket_tls.go).
	clientCert *tls.Certificate

	// bodyCtl is the request body's read control, for ngx.req.socket()
	// over a body that has one (HTTP/1): nil reads it with
	// client_body_timeout, uninterrupted.
	bodyCtl bodyReadControl
	// clientBody is the request body under br, for ngx.req.socket().
	clientBody *clientBody
	// readEOF: the peer closed its side; reads fail with "closed", but
	// the socket stays open for sending (OpenResty finalizes the read
	// part only).
	readEOF bool
	// req is the request of ngx.req.socket(): another request that gets
	// the object (a module kept it) finds it closed.
	req *Request
	// bind is sock:bind's local address for the next connects (nil:
	// the system's choice).
	bind *net.TCPAddr
	// waiting holds the operations a light thread waits in on s
	// (busyConnecting, busyReading, busyWriting): lua-nginx-module's
	// conn_waiting, read_waiting and write_waiting.
	waiting int
}

// Operations under way on a cosocket (cosocket.waiting).
const (
	busyConnecting = 1 << iota
	busyReading
	busyWriting
)

// busy is the error of a method that checks the operations in check
// while another light thread waits in one of them on s ("socket busy
// reading"), or "".
func (s *cosocket) busy(check int) string {
	switch w := s.waiting & check; {
	case w&busyConnecting != 0:
		return "socket busy connecting"
	case w&busyReading != 0:
		return "socket busy reading"
	case w&busyWriting != 0:
		return "socket busy writing"
	}
	return ""
}

// wait marks s as waiting in op until the returned func is called.
func (s *cosocket) wait(op int) func() {
	s.waiting |= op
	return func() { s.waiting &^= op }
}

// current detaches a request socket that another request made (one a
// module kept across requests): it reads as closed, as nginx's does once
// its request ended, and leaves that request's connection alone.
func (st *state) current(s *cosocket) *cosocket {
	if s.req != nil && s.req != st.r.req {
		s.req, s.body, s.conn, s.readEOF = nil, false, nil, true
	}
	return s
}

// clientBody reads a request body and remembers whether the client
// went away before its end (the body's io.ErrUnexpectedEOF): reads then
// fail with "client aborted", as OpenResty's, where reading past a
// complete body fails with "closed".
type clientBody struct {
	r       io.Reader
	aborted bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		b.aborted = true
	}
	return n, err
}

// bodyReadControl is what a request body (proxy/http1's) offers a reader
// that is not the server: its own read timeout, after which the body
// stays readable (settimeout), and a way to end a read that waits (the
// thread that reads is killed or its request ends).
type bodyReadControl interface {
	SetReadTimeout(d time.Duration)
	CancelRead()
	Continue() // sends "100 Continue" if the client waits for it
}

var errSocketClosed = errors.New("closed")

// sockets is the state's list of open cosockets, closed at run end.
func (st *state) trackSocket(s *cosocket) {
	s.owner = st
	st.r.sockets = append(st.r.sockets, s)
}

// closeSockets closes what the run left open (called at run end).
func (st *state) closeSockets() {
	for _, s := range st.r.sockets {
		st.dropSocket(s)
	}
	st.r.sockets = st.r.sockets[:0]
	for _, u := range st.r.udpSockets {
		if u.conn != nil {
			u.conn.Close()
			u.conn = nil
		}
	}
	st.r.udpSockets = st.r.udpSockets[:0]
}

// waitIO runs f, a wait on the network, through block: the run's time
// limit pauses, and other light threads run meanwhile. When the waiting
// thread is killed or the run ends, c (if not nil) gets a deadline in the
// past, so that f returns at once.
func (st *state) waitIO(c net.Conn, f func() error) error {
	threads := st.r.sched != nil
	return st.block(func(done <-chan struct{}) error {
		if c != nil && threads {
			defer onDone(done, func() { c.SetDeadline(time.Unix(1, 0)) })()
		}
		return f()
	})
}

// onDone calls cancel if done closes before the returned stop is called
// (a wait cut short: its thread killed, its request ended).
func onDone(done <-chan struct{}, cancel func()) (stop func()) {
	if done == nil || done == openChan {
		return func() {}
	}
	fin := make(chan struct{})
	go func() {
		select {
		case <-done:
			cancel()
		case <-fin:
		}
	}()
	return func() { close(fin) }
}

// doneContext is a context that ends when done is closed (a light
// thread's wait cut short), for the dial and the resolver.
func doneContext(done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	if done != nil && done != openChan {
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

func (st *state) openSocketTCP() *lua.LTable {
	methods := st.funcTable(map[string]lua.LGFunction{
		"connect":        st.sockConnect,
		"sslhandshake":   st.sockSSLHandshake,
		"setclientcert":  st.sockSetClientCert,
		"send":           st.sockSend,
		"receive":        st.sockReceive,
		"receiveany":     st.sockReceiveAny,
		"receiveuntil":   st.sockReceiveUntil,
		"settimeout":     st.sockSetTimeout,
		"settimeouts":    st.sockSetTimeouts,
		"setkeepalive":   st.sockSetKeepalive,
		"getreusedtimes": st.sockGetReusedTimes,
		"close":          st.sockClose,
		"setoption":      st.sockSetOption,
		"getoption":      st.sockGetOption,
		"bind":           st.sockBind,
	})
	// As lua-nginx-module's, the metatable is the method table itself,
	// its own __index (getmetatable(sock) lists the methods).
	methods.RawSetString("__index", methods)
	st.socketMeta = methods
	return methods
}

// socketConnect is ngx.socket.connect(host, port[, opts]): tcp() then
// connect, giving the socket or nil, err.
func (st *state) socketConnect(L *lua.LState) int {
	args := make([]lua.LValue, L.GetTop())
	for i := range args {
		args[i] = L.Get(i + 1)
	}
	L.SetTop(0)
	st.newSocketTCP(L)
	obj := L.Get(1)
	for _, a := range args {
		L.Push(a)
	}
	if n := st.sockConnect(L); n == 2 {
		return n
	}
	L.Push(obj)
	return 1
}

func (st *state) newSocketTCP(L *lua.LState) int {
	st.socketPhaseCheck()
	obj := L.NewTable()
	ud := L.NewUserData()
	o := st.socketOptions()
	ud.Value = &cosocket{connect: o.ConnectTimeout, send: o.SendTimeout, read: o.ReadTimeout, bufSize: o.BufferSize}
	obj.RawSetInt(1, ud)
	L.SetMetatable(obj, st.socketMeta)
	L.Push(obj)
	return 1
}

// socketPhaseCheck raises in the phases where nginx has no cosockets.
func (st *state) socketPhaseCheck() {
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent, PhaseTimer, PhaseSSLCert:
	default:
		st.phaseCheck("socket")
	}
}

// sockArity is how many arguments (the object included) each cosocket
// method takes and lua-nginx-module's message when the count is wrong; it
// checks the count before the object.
var sockArity = map[string]struct {
	min, max int
	msg      string
}{
	"connect":        {2, 4, "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen %d"},
	"send":           {2, 2, "expecting 2 arguments (including the object), but got %d"},
	"receive":        {1, 2, "expecting 1 or 2 arguments (including the object), but got %d"},
	"receiveany":     {2, 2, "expecting 2 arguments (including the object), but got %d"},
	"receiveuntil":   {2, 3, "expecting 2 or 3 arguments (including the object), but got %d"},
	"settimeout":     {2, 2, "ngx.socket settimeout: expecting 2 arguments (including the object) but seen %d"},
	"settimeouts":    {4, 4, "ngx.socket settimeout: expecting 4 arguments (including the object) but seen %d"},
	"setkeepalive":   {1, 3, "expecting 1 to 3 arguments (including the object), but got %d"},
	"getreusedtimes": {1, 1, "expecting 1 argument (including the object), but got %d"},
	"close":          {1, 1, "expecting 1 argument (including the object) but seen %d"},
	"bind":           {2, 2, "expecting 2 arguments, but got %d"},
}

// sock is the cosocket of method name's object (argument 1) after
// lua-nginx-module's checks: the argument count (sockArity), then
// luaL_checktype(L, 1, LUA_TTABLE) ("bad argument #1 to 'send' (table
// expected, got string)": sock.send("x", 1) called with "." instead of
// ":").
func sock(L *lua.LState, name string) *cosocket {
	if a, ok := sockArity[name]; ok {
		if n := L.GetTop(); n < a.min || n > a.max {
			cError(L, a.msg, n)
		}
	}
	obj, ok := L.Get(1).(*lua.LTable)
	if !ok {
		cArgError(L, 1, name, "table expected, got "+typeName(L.Get(1)))
	}
	ud, ok := obj.RawGetInt(1).(*lua.LUserData)
	if !ok {
		cArgError(L, 1, name, "table expected, got "+L.Get(1).Type().String())
	}
	s, ok := ud.Value.(*cosocket)
	if !ok {
		cArgError(L, 1, name, "bad socket object")
	}
	return s
}

// fail pushes nil, msg.
func fail(L *lua.LState, msg string) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(msg))
	return 2
}

// sockErr is the OpenResty text of a network error.
func sockErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errSocketClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNRESET, syscall.EPIPE:
			return "closed"
		}
		return errno.Error()
	}
	return err.Error()
}

func (st *state) sockConnect(L *lua.LState) int {
	s := sock(L, "connect")
	st.socketPhaseCheck()
	host := L.CheckString(2)
	network, addr, port := "tcp", "", 0
	optsIdx := 3
	// A port is a number or a numeric string; "unix:path" needs none.
	p, isNum := L.Get(3).(lua.LNumber)
	if ps, isStr := L.Get(3).(lua.LString); isStr {
		n, err := strconv.ParseFloat(strings.TrimSpace(string(ps)), 64)
		p, isNum = lua.LNumber(n), err == nil
	}
	if isNum || L.Get(3) == lua.LNil && L.GetTop() >= 4 {
		optsIdx = 4
	}
	if path, ok := strings.CutPrefix(host, "unix:"); ok {
		network, addr = "unix", path
	} else {
		if !isNum {
			return fail(L, "missing the port number")
		}
		port = int(p)
		if port < 0 || port > 65535 {
			return fail(L, fmt.Sprintf("bad port number: %d", port))
		}
	}
	key := host
	if network == "tcp" {
		key = host + ":" + strconv.Itoa(port)
	}
	poolSize, backlog := 0, -1
	if opts, ok := L.Get(optsIdx).(*lua.LTable); ok {
		// Argument numbers as LuaJIT counts them in a method call.
		bad := func(msg string) { cArgError(L, optsIdx-1, "connect", msg) }
		switch v := opts.RawGetString("pool").(type) {
		case lua.LString:
			key = string(v)
		case lua.LNumber:
			key = formatNumber(float64(v))
		case *lua.LNilType:
		default:
			bad(`bad "pool" option type: ` + v.Type().String())
		}
		switch v := opts.RawGetString("pool_size").(type) {
		case lua.LNumber:
			if v <= 0 {
				bad(`bad "pool_size" option value: ` + formatNumber(float64(v)))
			}
			poolSize = int(v)
		case *lua.LNilType:
		default:
			bad(`bad "pool_size" option type: ` + v.Type().String())
		}
		switch v := opts.RawGetString("backlog").(type) {
		case lua.LNumber:
			if v < 0 {
				bad(`bad "backlog" option value: ` + formatNumber(float64(v)))
			}
			backlog = int(v)
		case *lua.LNilType:
		default:
			bad(`bad "backlog" option type: ` + v.Type().String())
		}
	}
	if msg := s.busy(busyConnecting | busyReading | busyWriting); msg != "" {
		return fail(L, msg)
	}
	st.dropSocket(s) // a connected socket connects again
	s.key, s.reused, s.created = key, 0, true
	if backlog >= 0 && poolSize == 0 {
		poolSize = st.socketOptions().PoolSize
	}
	if ok, n := st.poolConnect(L, s, poolSize, backlog, host, port); !ok {
		return n
	} else if s.conn != nil {
		st.trackSocket(s)
		L.Push(lua.LNumber(1))
		return 1
	}
	defer s.wait(busyConnecting)()
	if s.pool != nil {
		defer func() {
			if s.conn == nil {
				// The thread was killed (or the request ended) while
				// resolving or connecting: its place in the pool goes
				// to the next queued connect, as lua-nginx-module's
				// cleanup gives it back at once.
				st.unpool(s)
			}
		}()
	}
	if network == "tcp" {
		var msg string
		if host == "" {
			st.unpool(s)
			return fail(L, `failed to parse host name "": no host`)
		}
		if addr, msg = st.resolveAddr(host, port); msg != "" {
			st.unpool(s)
			return fail(L, msg)
		}
	}
	var c net.Conn
	st.logf(ngxlog.Debug, "lua tcp socket connect timeout: %d", s.connect.Milliseconds())
	err := st.block(func(done <-chan struct{}) error {
		ctx, cancel := doneContext(done)
		defer cancel()
		var err error
		// KeepAlive -1: nginx sets no SO_KEEPALIVE on a cosocket
		// (getoption reads 0) unless setoption asks for it.
		d := net.Dialer{Timeout: s.connect, KeepAlive: -1}
		if s.bind != nil && network == "tcp" {
			d.LocalAddr = s.bind
		}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		st.unpool(s) // a failed connect does not count
		msg := sockErr(err)
		var se *os.SyscallError
		if errors.As(err, &se) && se.Syscall == "bind" {
			// nginx's event module logs it (ngx_event_connect_peer)
			st.logf(ngxlog.Crit, "bind(%s) failed (%s)", s.bind.IP, ngxlog.Errno(err))
		} else if msg == "timeout" {
			st.sockLogf(L, "lua tcp socket connect timed out, when connecting to %s", addr)
		} else if network == "unix" {
			// connect(2) on a unix socket fails at once: nginx's event
			// module logs it (crit unless refused), the Lua module nothing
			level := ngxlog.Crit
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EAGAIN) {
				level = ngxlog.Err
			}
			st.logf(level, "connect() to unix:%s failed (%s)", addr, ngxlog.Errno(err))
		} else {
			st.sockLogf(L, "connect() failed (%s)", ngxlog.Errno(err))
		}
		return fail(L, msg)
	}
	s.wr = &waitReader{c: c, r: c}
	s.conn, s.br, s.readEOF = c, bufio.NewReaderSize(s.wr, s.bufSize), false
	st.trackSocket(s)
	L.Push(lua.LNumber(1))
	return 1
}

// resolveAddr returns host:port with host an IP address, looked up
// through the location's resolver when it is a name; or OpenResty's
// message for why it cannot.
func (st *state) resolveAddr(host string, port int) (addr, msg string) {
	ip := strings.Trim(host, "[]")
	if net.ParseIP(ip) == nil {
		resolve := st.r.req.resolver()
		if resolve == nil {
			return "", fmt.Sprintf("no resolver defined to resolve %q", host)
		}
		var addrs []string
		err, aborted := st.blockFor(func(done <-chan struct{}) error {
			ctx, cancel := doneContext(done)
			defer cancel()
			var err error
			addrs, err = resolve(ctx, host)
			return err
		})
		st.logf(ngxlog.Debug, "resolve name done: 0") // nginx's resolver context ends
		if aborted {
			st.logf(ngxlog.Debug, "lua tcp socket abort resolver")
			st.abortThread()
		}
		if err != nil && strings.Contains(err.Error(), " could not be resolved (") {
			return "", err.Error() // the resolver's reason, "(110: Operation timed out)"
		}
		if err != nil || len(addrs) == 0 {
			return "", fmt.Sprintf("%s could not be resolved (3: Host not found)", host)
		}
		ip = addrs[0]
	}
	return net.JoinHostPort(ip, strconv.Itoa(port)), ""
}

// resolver is the request's DNS lookup, nil without a `resolver`.
func (r *Request) resolver() func(context.Context, string) ([]string, error) {
	if r == nil {
		return nil
	}
	return r.Resolve
}

// sendBytes flattens send's argument: a string, a number, or an array
// table of those (nested), as OpenResty's send takes them.
func sendBytes(L *lua.LState, v lua.LValue, buf *bytes.Buffer) {
	switch x := v.(type) {
	case lua.LString:
		buf.WriteString(string(x))
	case lua.LNumber:
		buf.WriteString(formatNumber(float64(x)))
	case lua.LBool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case *lua.LTable:
		for i := 1; i <= x.Len(); i++ {
			e := x.RawGetInt(i)
			switch e.(type) {
			case lua.LString, lua.LNumber, *lua.LTable:
				sendBytes(L, e, buf)
			default:
				cArgError(L, 2, "send", "bad data type "+e.Type().String()+" found")
			}
		}
	default:
		cArgError(L, 2, "send", "string, number, boolean, nil, or array table expected, got "+v.Type().String())
	}
}

// closedLog is lua-nginx-module's error line for I/O on a closed socket
// (what follows "u:" are its pointers).
func (st *state) closedLog(L *lua.LState, what string) {
	st.sockLogf(L, "attempt to %s data on a closed socket: u:0000000000000000, c:0000000000000000, ft:0 eof:0", what)
}

func (st *state) sockSend(L *lua.LState) int {
	s := st.current(sock(L, "send"))
	if s.conn == nil {
		st.closedLog(L, "send")
		return fail(L, "closed")
	}
	if msg := s.busy(busyConnecting | busyWriting); msg != "" {
		return fail(L, msg)
	}
	st.logf(ngxlog.Debug, "lua tcp socket send timeout: %d", s.send.Milliseconds())
	var buf bytes.Buffer
	v := L.Get(2)
	if v == lua.LNil {
		buf.WriteString("nil")
	} else {
		sendBytes(L, v, &buf)
	}
	if buf.Len() == 0 {
		L.Push(lua.LNumber(0))
		return 1
	}
	size := st.sendBuf(buf.Len())
	deadline := time.Now().Add(s.send)
	p := buf.Bytes()
	n, err := s.quickWrite(p, deadline)
	p = p[n:]
	if err == nil && len(p) > 0 {
		// The socket's buffer is full: the thread waits (and the socket
		// is busy writing for the others) until the rest is out.
		defer s.wait(busyWriting)()
		err = st.waitIO(s.conn, func() error {
			s.conn.SetWriteDeadline(deadline)
			m, err := s.conn.Write(p)
			n += m
			return err
		})
	}
	if err != nil {
		msg := sockErr(err)
		if msg == "timeout" {
			st.sockLogf(L, "lua tcp socket write timed out")
		}
		st.dropSocket(s)
		return fail(L, msg)
	}
	if req := st.r.req; req != nil {
		req.freeBufs = append(req.freeBufs, size) // sent in full: back to the free list
	}
	L.Push(lua.LNumber(n))
	return 1
}

// quickWriteWait is how long a send may wait for the socket's buffer
// before its thread lets the others run.
const quickWriteWait = time.Millisecond

// quickWrite writes what the socket's buffer takes at once, as nginx's
// send does before it waits for the socket to be writable: no other light
// thread runs meanwhile. What is left (all of p for a TLS connection,
// which a timed-out write would break) waits through the caller.
func (s *cosocket) quickWrite(p []byte, deadline time.Time) (int, error) {
	switch s.conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return 0, nil
	}
	if time.Until(deadline) <= quickWriteWait {
		return 0, nil
	}
	s.conn.SetWriteDeadline(time.Now().Add(quickWriteWait))
	n, err := s.conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	return n, err
}

// sendBuf is ngx_http_lua_chain_get_free_buf for a send of n bytes: the
// free list's head is reused when it holds n bytes, else its memory is
// reallocated; the debug lines are lua-nginx-module's. It returns the
// buffer's size.
func (st *state) sendBuf(n int) int {
	req := st.r.req
	if req == nil || len(req.freeBufs) == 0 {
		return n
	}
	size := req.freeBufs[len(req.freeBufs)-1]
	req.freeBufs = req.freeBufs[:len(req.freeBufs)-1]
	if size >= n {
		st.logf(ngxlog.Debug, "lua reuse free buf memory %d >= %d, cl:0000000000000000, p:0000000000000000", size, n)
		return size
	}
	st.logf(ngxlog.Debug, "lua reuse free buf chain, but reallocate memory because %d >= %d, cl:0000000000000000, p:0000000000000000", n, size)
	return n
}

// dropSocket closes s (after an error, close, the end of the run), and
// uncounts it from its pool.
func (st *state) dropSocket(s *cosocket) {
	if s.conn != nil {
		s.conn.Close()
		st.unpool(s)
	}
	s.conn, s.br, s.wr, s.body, s.readEOF = nil, nil, nil, false, false
}

// unpool uncounts s from the pool it came through.
func (st *state) unpool(s *cosocket) {
	if s.pool != nil {
		st.rt.pool.release(s.pool, st.poolDebug())
		s.pool = nil
	}
}

// poolConnect is connect's pool part: an idle connection of the key's
// pool (s.conn set), or a place in the pool to connect in (s.pool set; it
// may wait for one with a backlog), or no pool at all. It returns false
// and the number of results when connect fails here.
func (st *state) poolConnect(L *lua.LState, s *cosocket, size, backlog int, host string, port int) (bool, int) {
	p, logf := &st.rt.pool, st.poolDebug()
	cp := p.lookup(s.key, size, backlog, logf)
	if cp == nil {
		return true, 0
	}
	for resuming := false; ; resuming = true {
		if c, br, wr, n := p.takeIdle(cp, logf); c != nil {
			s.conn, s.br, s.wr, s.reused, s.pool, s.readEOF = c, br, wr, n, cp, false
			return true, 0
		}
		wait, msg := p.admit(cp, resuming, logf)
		if msg != "" {
			return false, fail(L, msg)
		}
		if wait == nil {
			s.pool = cp
			return true, 0
		}
		var resumed bool
		_, aborted := st.blockFor(func(done <-chan struct{}) error {
			t := time.NewTimer(s.connect)
			defer t.Stop()
			select {
			case <-wait:
			case <-t.C:
			case <-done:
			}
			resumed = p.dequeue(cp, wait)
			return nil
		})
		if aborted {
			logf("lua tcp socket abort queueing")
			p.pass(cp, logf) // the turn goes on (had it come)
			st.abortThread()
		}
		if !resumed {
			where := host
			if port > 0 {
				where = fmt.Sprintf("%s:%d", host, port)
			}
			st.sockLogf(L, "lua tcp socket queued connect timed out, when trying to connect to %s", where)
			return false, fail(L, "timeout")
		}
	}
}

// failRead pushes nil, err, partial; a timeout keeps the socket, other
// errors close it.
func (st *state) failRead(L *lua.LState, s *cosocket, err error, partial []byte) int {
	msg := sockErr(err)
	if s.clientBody != nil && s.clientBody.aborted && msg == "closed" {
		msg = "client aborted"
	}
	switch {
	case msg == "timeout":
		st.sockLogf(L, "lua tcp socket read timed out")
	case s.conn != nil && !s.body && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		s.readEOF = true // the peer's side only: sending goes on
	default:
		st.dropSocket(s)
	}
	L.Push(lua.LNil)
	L.Push(lua.LString(msg))
	L.Push(lua.LString(partial))
	return 3
}

func (st *state) readWith(s *cosocket, f func() error) error {
	st.logf(ngxlog.Debug, "lua tcp socket read timeout: %d", s.read.Milliseconds())
	defer s.wait(busyReading)()
	if ctl := s.bodyCtl; ctl != nil {
		ctl.SetReadTimeout(s.read)
		return st.block(func(done <-chan struct{}) error {
			defer onDone(done, ctl.CancelRead)()
			return f()
		})
	}
	if wr := s.wr; wr != nil {
		// nginx arms the read timer for each wait for data, not for
		// the whole receive: a peer that trickles bytes slower than
		// the timeout in total, but each within it, is read to the end.
		wr.arm(s.read)
		defer wr.disarm()
		threads := st.r.sched != nil
		return st.block(func(done <-chan struct{}) error {
			if threads {
				defer onDone(done, wr.stop)()
			}
			return f()
		})
	}
	return st.waitIO(s.conn, func() error {
		if s.conn != nil {
			s.conn.SetReadDeadline(time.Now().Add(s.read))
		}
		return f()
	})
}

// waitReader is the source of a dialed cosocket's buffer: while armed,
// each read from the connection (each wait for data) gets its own read
// deadline, as nginx arms its read timer per read event. A deadline set
// to cut a wait short (a killed light thread) stops the renewals until
// the next arm.
type waitReader struct {
	c       net.Conn  // the connection, its deadlines
	r       io.Reader // what is read: c, or a buffer over it
	mu      sync.Mutex
	timeout time.Duration // 0: not armed, the deadline is left as it is
}

func (w *waitReader) arm(d time.Duration) {
	w.mu.Lock()
	w.timeout = d
	w.mu.Unlock()
	w.c.SetReadDeadline(time.Now().Add(d))
}

func (w *waitReader) retime(d time.Duration) {
	w.mu.Lock()
	if w.timeout > 0 {
		w.timeout = d
	}
	w.mu.Unlock()
}

func (w *waitReader) disarm() {
	w.mu.Lock()
	w.timeout = 0
	w.mu.Unlock()
}

// stop cuts the wait under way short and stops the renewals.
func (w *waitReader) stop() {
	w.mu.Lock()
	w.timeout = 0
	w.c.SetDeadline(time.Unix(1, 0))
	w.mu.Unlock()
}

func (w *waitReader) Read(p []byte) (int, error) {
	w.mu.Lock()
	if w.timeout > 0 {
		w.c.SetReadDeadline(time.Now().Add(w.timeout))
	}
	w.mu.Unlock()
	return w.r.Read(p)
}

// closed reports whether s can no longer read.
func (s *cosocket) closed() bool { return (s.conn == nil || s.readEOF) && !s.body }

// reqSocket is ngx.req.socket(): the request body as a read-only cosocket
// (receive, receiveany, receiveuntil, settimeout(s)), as lua-resty-upload
// reads it. ngx.req.socket(true) is rawReqSocket.
func (st *state) reqSocket(L *lua.LState) int {
	switch st.r.phase {
	case PhaseServerRewrite, PhaseRewrite, PhaseAccess, PhaseContent:
	default:
		st.phaseCheck("socket")
	}
	req := st.r.req
	if req == nil || req.HTTP == nil {
		cError(L, "no request found")
	}
	if lua.LVAsBool(L.Get(1)) {
		return st.rawReqSocket(L, req)
	}
	switch {
	case req.bodyRead:
		return fail(L, "request body already exists")
	case req.HTTP.Body == nil || req.HTTP.Body == http.NoBody:
		return fail(L, "no body")
	case req.HTTP.ContentLength < 0:
		return fail(L, "chunked request bodies not supported yet")
	}
	req.bodyRead, req.bodyFile = true, true // its bytes go to the script
	o := st.socketOptions()
	obj := L.NewTable()
	ud := L.NewUserData()
	cb := &clientBody{r: req.HTTP.Body}
	s := &cosocket{body: true, br: bufio.NewReaderSize(cb, o.BufferSize), clientBody: cb, req: req,
		connect: o.ConnectTimeout, send: o.SendTimeout, read: o.ReadTimeout, bufSize: o.BufferSize}
	if ctl, ok := req.HTTP.Body.(bodyReadControl); ok {
		s.bodyCtl = ctl
		ctl.Continue() // nginx answers "Expect: 100-continue" here
	}
	ud.Value = s
	obj.RawSetInt(1, ud)
	L.SetMetatable(obj, st.reqSocketMeta())
	L.Push(obj)
	return 1
}

// rawReqSocket is ngx.req.socket(true): the client connection itself, to
// read what follows the request head (the body if it was not read, then
// anything) and to write raw bytes (resty.websocket.server after its 101).
// The headers count as sent from then on; ngx.say and the other output
// functions fail.
func (st *state) rawReqSocket(L *lua.LState, req *Request) int {
	switch {
	case req.rawSocket:
		return fail(L, "duplicate call")
	case req.Subrequest:
		return fail(L, "nginx version too old") // nginx: no raw socket in subrequests
	case req.readingBody:
		return fail(L, "pending request body reading in some other thread")
	case !req.HTTP.ProtoAtLeast(1, 1) && st.r.sent:
		return fail(L, "http 1.0 buffering")
	case req.RawSocket == nil:
		return fail(L, "no raw socket")
	}
	c, br, err := req.RawSocket()
	if err != nil {
		return fail(L, err.Error())
	}
	req.rawSocket = true
	st.r.sent = true
	// Output not flushed yet stays in nginx's write filter and never
	// leaves (measured).
	st.r.body.Reset()
	o := st.socketOptions()
	// br is the server's buffer of the hijacked connection, read by
	// nothing else from now on: a buffer over it reads each wait with
	// its own timeout.
	wr := &waitReader{c: c, r: br}
	s := &cosocket{conn: c, br: bufio.NewReaderSize(wr, o.BufferSize), wr: wr, req: req, connect: o.ConnectTimeout, send: o.SendTimeout, read: o.ReadTimeout, bufSize: o.BufferSize}
	st.trackSocket(s) // closed with the request, as nginx finalizes it
	obj := L.NewTable()
	ud := L.NewUserData()
	ud.Value = s
	obj.RawSetInt(1, ud)
	L.SetMetatable(obj, st.rawReqSocketMeta())
	L.Push(obj)
	return 1
}

// rawReqSocketMeta is the metatable of ngx.req.socket(true)'s sockets.
func (st *state) rawReqSocketMeta() *lua.LTable {
	return st.cachedMeta(&st.rawSockMeta, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"receive":      st.sockReceive,
			"receiveany":   st.sockReceiveAny,
			"receiveuntil": st.sockReceiveUntil,
			"send":         st.sockSend,
			"settimeout":   st.sockSetTimeout,
			"settimeouts":  st.sockSetTimeouts,
		}
	})
}

// reqSocketMeta is the metatable of request-body sockets: the reading
// half of a cosocket's methods.
func (st *state) reqSocketMeta() *lua.LTable {
	return st.cachedMeta(&st.reqSockMeta, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"receive":      st.sockReceive,
			"receiveany":   st.sockReceiveAny,
			"receiveuntil": st.sockReceiveUntil,
			"settimeout":   st.sockSetTimeout,
			"settimeouts":  st.sockSetTimeouts,
		}
	})
}

// cachedMeta returns *cache, first made as a table of methods() that is
// its own __index, as lua-nginx-module's socket metatables are: built once
// per state.
func (st *state) cachedMeta(cache **lua.LTable, methods func() map[string]lua.LGFunction) *lua.LTable {
	if *cache == nil {
		*cache = st.funcTable(methods())
		(*cache).RawSetString("__index", *cache)
	}
	return *cache
}

func (st *state) sockReceive(L *lua.LState) int {
	s := st.current(sock(L, "receive"))
	if s.closed() {
		st.closedLog(L, "receive")
		L.Push(lua.LNil)
		L.Push(lua.LString("closed"))
		return 2
	}
	if msg := s.busy(busyConnecting | busyReading); msg != "" {
		return fail(L, msg)
	}
	pat := L.Get(2)
	switch p := pat.(type) {
	case lua.LNumber:
		n := int(p)
		if n < 0 {
			cArgError(L, 2, "receive", "bad pattern argument: "+formatNumber(float64(p)))
		}
		if s.br.Buffered() >= n { // already here: no wait
			buf, _ := s.br.Peek(n)
			L.Push(lua.LString(buf))
			s.br.Discard(n)
			return 1
		}
		buf := make([]byte, n)
		var got int
		err := st.readWith(s, func() error {
			var err error
			got, err = io.ReadFull(s.br, buf)
			return err
		})
		if err != nil {
			return st.failRead(L, s, err, buf[:got])
		}
		L.Push(lua.LString(buf))
		return 1
	case lua.LString:
		switch p {
		case "*a":
			var out []byte
			err := st.readWith(s, func() error {
				var err error
				out, err = io.ReadAll(s.br)
				return err
			})
			if err != nil {
				return st.failRead(L, s, err, out)
			}
			L.Push(lua.LString(out))
			return 1
		case "*l":
		default:
			if n, err := strconv.Atoi(string(p)); err == nil && n >= 0 {
				L.Replace(2, lua.LNumber(n))
				return st.sockReceive(L)
			}
			cArgError(L, 2, "receive", "bad pattern argument: "+string(p))
		}
	case *lua.LNilType:
	default:
		cArgError(L, 2, "receive", "bad pattern argument: "+pat.Type().String())
	}
	// *l: up to LF, CRs dropped. A line already buffered is taken without
	// waiting (pipelined replies arrive many to a read).
	if buf, _ := s.br.Peek(s.br.Buffered()); bytes.IndexByte(buf, '\n') >= 0 {
		i := bytes.IndexByte(buf, '\n')
		line := bytes.ReplaceAll(buf[:i], []byte("\r"), nil)
		s.br.Discard(i + 1)
		L.Push(lua.LString(line))
		return 1
	}
	var line []byte
	err := st.readWith(s, func() error {
		for {
			b, err := s.br.ReadByte()
			if err != nil {
				return err
			}
			if b == '\n' {
				return nil
			}
			if b != '\r' {
				line = append(line, b)
			}
		}
	})
	if err != nil {
		return st.failRead(L, s, err, line)
	}
	L.Push(lua.LString(line))
	return 1
}

func (st *state) sockReceiveAny(L *lua.LState) int {
	s := st.current(sock(L, "receiveany"))
	if s.closed() {
		st.closedLog(L, "receive")
		return fail(L, "closed")
	}
	if msg := s.busy(busyConnecting | busyReading); msg != "" {
		return fail(L, msg)
	}
	max, ok := L.Get(2).(lua.LNumber)
	if !ok || max < 1 {
		cArgError(L, 2, "receiveany", "bad max argument")
	}
	st.logf(ngxlog.Debug, "lua tcp socket calling receiveany() method to read at most %d bytes", int(max))
	buf := make([]byte, int(max))
	var n int
	err := st.readWith(s, func() error {
		var err error
		n, err = s.br.Read(buf)
		return err
	})
	if err != nil && n == 0 {
		return st.failRead(L, s, err, nil)
	}
	st.logf(ngxlog.Debug, "lua tcp socket read any")
	L.Push(lua.LString(buf[:n]))
	return 1
}

// sockReceiveUntil returns an iterator reading up to the pattern. With a
// size argument it hands the data out in pieces of at most size bytes and
// then nil once the pattern has been consumed.
func (st *state) sockReceiveUntil(L *lua.LState) int {
	s := st.current(sock(L, "receiveuntil"))
	pat := L.CheckString(2)
	if pat == "" {
		cArgError(L, 2, "receiveuntil", "pattern is empty")
	}
	inclusive := false
	if opts, ok := L.Get(3).(*lua.LTable); ok {
		inclusive = lua.LVAsBool(opts.RawGetString("inclusive"))
	}
	var pending []byte
	draining, full := false, false
	var failed error // a read error behind the pieces still pending
	L.Push(L.NewFunction(func(L *lua.LState) int {
		size := 0
		if v, ok := L.Get(1).(lua.LNumber); ok {
			size = int(v)
		}
		if !draining {
			if s.closed() {
				return fail(L, "closed")
			}
			if msg := s.busy(busyConnecting | busyReading); msg != "" {
				return fail(L, msg)
			}
			var data []byte
			err := st.readWith(s, func() error {
				for {
					b, err := s.br.ReadByte()
					if err != nil {
						return err
					}
					data = append(data, b)
					if bytes.HasSuffix(data, []byte(pat)) {
						return nil
					}
					if len(data) > socketReceiveUntilMax+len(pat) {
						return errors.New("pattern not found within the buffer limit")
					}
				}
			})
			switch {
			case err != nil && (size <= 0 || len(data) < size):
				return st.failRead(L, s, err, data)
			case err != nil:
				// nginx hands out the full pieces it had before the
				// error, then the error with the rest as partial.
				pending, draining, full, failed = data, true, false, err
			default:
				if !inclusive {
					data = data[:len(data)-len(pat)]
				}
				if size <= 0 {
					L.Push(lua.LString(data))
					return 1
				}
				// nothing before the pattern: "" first, then nil
				pending, draining, full = data, true, len(data) == 0
			}
		}
		if failed != nil && len(pending) < max(size, 1) {
			err, rest := failed, pending
			pending, draining, failed = nil, false, nil
			return st.failRead(L, s, err, rest)
		}
		// Pieces of at most size bytes. A piece that filled size has not
		// seen the pattern yet, as nginx reads it: the pattern's own call
		// then gives "", and the call after that nil.
		if len(pending) == 0 || size <= 0 {
			rest := pending
			pending = nil
			switch {
			case len(rest) > 0:
				L.Push(lua.LString(rest))
			case full:
				full = false
				L.Push(lua.LString(""))
			default:
				draining = false
				L.Push(lua.LNil)
			}
			return 1
		}
		n := min(size, len(pending))
		out := pending[:n]
		pending = pending[n:]
		full = n == size && len(pending) == 0
		if len(pending) == 0 && !full {
			draining = true // the next call gives nil
		}
		L.Push(lua.LString(out))
		return 1
	}))
	return 1
}

// timeoutArg is lua-nginx-module's (ngx_int_t) lua_tonumber(L, n) of a
// timeout: whole milliseconds (a table or nil is 0); 0 or less is def.
// With strict (tcp) a value that does not fit 31 bits, negative ones
// included, raises "bad timeout value" (C's "timeout >> 31"); udp's
// settimeout takes anything.
func timeoutArg(L *lua.LState, n int, def time.Duration, strict bool) time.Duration {
	f := float64(L.ToNumber(n))
	if f <= -1 || f >= 1<<31 || math.IsNaN(f) {
		if strict {
			cError(L, "bad timeout value")
		}
		if f >= 1<<31 {
			f = 1 << 31 // 24 days: never, in practice
		}
	}
	if ms := int64(f); ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return def
}

func (st *state) sockSetTimeout(L *lua.LState) int {
	s := sock(L, "settimeout")
	o := st.socketOptions()
	s.connect = timeoutArg(L, 2, o.ConnectTimeout, true)
	s.send = timeoutArg(L, 2, o.SendTimeout, true)
	s.read = timeoutArg(L, 2, o.ReadTimeout, true)
	s.retime()
	return 0
}

// sockSetTimeouts checks the three values before it sets any (0 is the
// lua_socket_*_timeout setting).
func (st *state) sockSetTimeouts(L *lua.LState) int {
	s := sock(L, "settimeouts")
	o := st.socketOptions()
	connect := timeoutArg(L, 2, o.ConnectTimeout, true)
	send := timeoutArg(L, 3, o.SendTimeout, true)
	s.read = timeoutArg(L, 4, o.ReadTimeout, true)
	s.connect, s.send = connect, send
	s.retime()
	return 0
}

// retime gives a receive under way (another light thread's) the new read
// timeout from its next wait on, as nginx re-arms its read timer with
// the socket's current timeout.
func (s *cosocket) retime() {
	if s.wr != nil {
		s.wr.retime(s.read)
	}
}

func (st *state) sockSetKeepalive(L *lua.LState) int {
	s := sock(L, "setkeepalive")
	if s.conn == nil {
		return fail(L, "closed")
	}
	if msg := s.busy(busyConnecting | busyReading | busyWriting); msg != "" {
		return fail(L, msg)
	}
	if s.br.Buffered() > 0 {
		st.dropSocket(s)
		return fail(L, "unread data in buffer")
	}
	if s.readEOF {
		return fail(L, "closed") // the peer closed; close() still closes it (measured)
	}
	o := st.socketOptions()
	idle := o.KeepaliveTimeout
	if v, ok := L.Get(2).(lua.LNumber); ok && v > 0 {
		idle = time.Duration(float64(v) * float64(time.Millisecond))
	}
	size := o.PoolSize
	if v, ok := L.Get(3).(lua.LNumber); ok {
		if v <= 0 {
			cArgError(L, 3, "setkeepalive", "bad \"pool_size\" option value: "+formatNumber(float64(v)))
		}
		size = int(v)
	}
	cp, logf := s.pool, st.poolDebug()
	if cp == nil {
		// the pool made by connect's options wins over size
		cp = st.rt.pool.lookup(s.key, size, -1, logf)
	}
	st.rt.pool.put(cp, s.pool != nil, s.conn, s.br, s.wr, s.reused+1, idle, logf)
	s.conn, s.br, s.wr, s.pool = nil, nil, nil, nil
	L.Push(lua.LNumber(1))
	return 1
}

func (st *state) sockGetReusedTimes(L *lua.LState) int {
	s := sock(L, "getreusedtimes")
	if s.conn == nil {
		return fail(L, "closed")
	}
	L.Push(lua.LNumber(s.reused))
	return 1
}

// sockBind is sock:bind(ip): the local address of the socket's next
// connects (tcp; an IPv4 or IPv6 address, no port: "bad address").
func (st *state) sockBind(L *lua.LState) int {
	s := sock(L, "bind")
	st.socketPhaseCheck()
	text := L.CheckString(2)
	ip := net.ParseIP(text)
	if ip == nil || strings.Contains(text, ".") && ip.To4() == nil {
		return fail(L, "bad address")
	}
	s.bind = &net.TCPAddr{IP: ip}
	st.logf(ngxlog.Debug, "lua tcp socket bind ip: %s", text)
	L.Push(lua.LTrue)
	return 1
}

func (st *state) sockClose(L *lua.LState) int {
	s := sock(L, "close")
	if s.conn == nil {
		return fail(L, "closed")
	}
	if msg := s.busy(busyConnecting | busyReading | busyWriting); msg != "" {
		return fail(L, msg)
	}
	st.dropSocket(s)
	L.Push(lua.LNumber(1))
	return 1
}

// sockGetOption is tcpsock:getoption(option) as lua-resty-core's: the
// option's value as getsockopt reads it. Like lua-nginx-module v0.10.23,
// "sndbuf" reads SO_RCVBUF and "rcvbuf" SO_SNDBUF.
func (st *state) sockGetOption(L *lua.LState) int {
	s := sock(L, "getoption")
	s.mustBeCreated(L)
	v := L.Get(2)
	if v == lua.LNil {
		return fail(L, `missing the "option" argument`)
	}
	opt, ok := v.(lua.LString)
	if !ok || sockOptions[string(opt)] == 0 {
		return fail(L, "unsupported option "+lua.LVAsString(L.ToStringMeta(v)))
	}
	if s.conn == nil {
		return fail(L, "closed")
	}
	n, err := getSockOpt(s.conn, string(opt))
	if err != nil {
		return fail(L, err.Error())
	}
	L.Push(lua.LNumber(n))
	return 1
}

// mustBeCreated raises as lua-resty-core does for an option of a socket
// connect never ran on.
func (s *cosocket) mustBeCreated(L *lua.LState) {
	if !s.created && s.conn == nil {
		L.RaiseError("socket is never created nor connected")
	}
}

// sockOptions are the names getoption knows (lua-resty-core's indexes).
var sockOptions = map[string]int{"keepalive": 1, "reuseaddr": 2, "tcp-nodelay": 3, "sndbuf": 4, "rcvbuf": 5}

func (st *state) sockSetOption(L *lua.LState) int {
	s := sock(L, "setoption")
	s.mustBeCreated(L)
	opt := L.CheckString(2)
	if s.conn == nil {
		return fail(L, "closed")
	}
	tc, _ := s.conn.(*net.TCPConn)
	switch opt {
	case "keepalive":
		if tc != nil {
			tc.SetKeepAlive(lua.LVAsBool(L.Get(3)))
		}
	case "tcp-nodelay":
		if tc != nil {
			tc.SetNoDelay(lua.LVAsBool(L.Get(3)))
		}
	case "sndbuf":
		if tc != nil {
			tc.SetWriteBuffer(L.CheckInt(3))
		}
	case "rcvbuf":
		if tc != nil {
			tc.SetReadBuffer(L.CheckInt(3))
		}
	case "reuseaddr":
	default:
		return fail(L, "unsupported option "+opt)
	}
	L.Push(lua.LTrue)
	return 1
}
