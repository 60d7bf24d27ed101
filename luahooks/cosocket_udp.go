package luahooks

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ngxsockify/ngxlog"

	lua "github.com/yuin/gopher-lua"
)

// ngx.socket.udp: setpeername, send, receive, settimeout and close, with
// OpenResty's results. A datagram socket is closed when the run that
// opened it ends, as TCP cosockets are.

// udpSocket is the Go side of one ngx.socket.udp() object.
type udpSocket struct {
	conn net.Conn
	read time.Duration
}

const udpMaxDatagram = 65536 // receive's default and largest size

func (st *state) newSocketUDP(L *lua.LState) int {
	st.socketPhaseCheck()
	if st.udpMeta == nil {
		methods := st.funcTable(map[string]lua.LGFunction{
			"setpeername": st.udpSetPeername,
			"send":        st.udpSend,
			"receive":     st.udpReceive,
			"settimeout":  st.udpSetTimeout,
			"close":       st.udpClose,
		})
		methods.RawSetString("__index", methods) // as lua-nginx-module's
		st.udpMeta = methods
	}
	obj := L.NewTable()
	ud := L.NewUserData()
	ud.Value = &udpSocket{read: st.socketOptions().ReadTimeout}
	obj.RawSetInt(1, ud)
	L.SetMetatable(obj, st.udpMeta)
	L.Push(obj)
	return 1
}

func udpSock(L *lua.LState, name string) *udpSocket {
	obj, ok := L.Get(1).(*lua.LTable)
	if !ok {
		cArgError(L, 1, name, "table expected, got "+L.Get(1).Type().String())
	}
	ud, ok := obj.RawGetInt(1).(*lua.LUserData)
	if !ok {
		cArgError(L, 1, name, "bad udp socket object")
	}
	u, ok := ud.Value.(*udpSocket)
	if !ok {
		cArgError(L, 1, name, "bad udp socket object")
	}
	return u
}

func (st *state) udpSetPeername(L *lua.LState) int {
	u := udpSock(L, "setpeername")
	st.socketPhaseCheck()
	host := L.CheckString(2)
	if u.conn != nil {
		u.conn.Close()
		u.conn = nil
	}
	network, addr := "udp", ""
	if path, ok := strings.CutPrefix(host, "unix:"); ok {
		network, addr = "unixgram", path
	} else {
		p, ok := L.Get(3).(lua.LNumber)
		if ps, isStr := L.Get(3).(lua.LString); isStr {
			n, err := strconv.Atoi(strings.TrimSpace(string(ps)))
			p, ok = lua.LNumber(n), err == nil
		}
		if !ok {
			return fail(L, "missing the port number")
		}
		if p < 0 || p > 65535 {
			return fail(L, fmt.Sprintf("bad port number: %d", int(p)))
		}
		var msg string
		if addr, msg = st.resolveAddr(host, int(p)); msg != "" {
			return fail(L, msg)
		}
	}
	var d net.Dialer
	if network == "unixgram" {
		// nginx binds a datagram unix socket to an address of the
		// kernel's choice (autobind) so that the peer can answer it
		st.logf(ngxlog.Debug, "datagram unix domain socket autobind")
		d.Control = autobind
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		if network == "unixgram" {
			// nginx's event module logs it (crit unless refused), as
			// for a tcp cosocket's unix connect
			level := ngxlog.Crit
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EAGAIN) {
				level = ngxlog.Err
			}
			st.logf(level, "connect() failed (%s)", ngxlog.Errno(err))
		} else {
			st.sockLogf(L, "connect() failed (%s)", ngxlog.Errno(err))
		}
		return fail(L, sockErr(err))
	}
	u.conn = c
	st.r.udpSockets = append(st.r.udpSockets, u)
	L.Push(lua.LNumber(1))
	return 1
}

func (st *state) udpSend(L *lua.LState) int {
	u := udpSock(L, "send")
	if u.conn == nil {
		st.closedLog(L, "send")
		return fail(L, "closed")
	}
	var buf bytes.Buffer
	if v := L.Get(2); v == lua.LNil {
		buf.WriteString("nil")
	} else {
		sendBytes(L, v, &buf)
	}
	n, err := u.conn.Write(buf.Bytes())
	if err == nil {
		st.logf(ngxlog.Debug, "send: fd:%d %d of %d", connFD(u.conn), n, buf.Len())
	}
	switch {
	case err != nil:
		return fail(L, sockErr(err))
	case n < buf.Len():
		return fail(L, "partial write")
	}
	L.Push(lua.LNumber(1))
	return 1
}

func (st *state) udpReceive(L *lua.LState) int {
	u := udpSock(L, "receive")
	if u.conn == nil {
		st.closedLog(L, "receive")
		return fail(L, "closed")
	}
	size := udpMaxDatagram
	if v, ok := L.Get(2).(lua.LNumber); ok {
		size = min(max(int(v), 1), udpMaxDatagram)
	}
	st.logf(ngxlog.Debug, "lua udp socket receive buffer size: %d", size)
	buf := make([]byte, size)
	var n int
	err := st.waitIO(u.conn, func() error {
		u.conn.SetReadDeadline(time.Now().Add(u.read))
		var err error
		n, err = u.conn.Read(buf)
		return err
	})
	if err != nil {
		msg := sockErr(err)
		switch {
		case msg == "timeout":
			// no "[lua] chunk:line:" prefix here (measured)
			if st.r.req == nil || !st.r.req.Socket.QuietErrors {
				st.logf(ngxlog.Err, "lua udp socket read timed out")
			}
		case errors.Is(err, syscall.ECONNREFUSED):
			// nginx's recv logs it, whatever lua_socket_log_errors says
			st.logf(ngxlog.Err, "recv() failed (%s)", ngxlog.Errno(err))
		}
		return fail(L, msg)
	}
	L.Push(lua.LString(buf[:n]))
	return 1
}

func (st *state) udpSetTimeout(L *lua.LState) int {
	u := udpSock(L, "settimeout")
	u.read = timeoutArg(L, 2, st.socketOptions().ReadTimeout, false)
	return 0
}

func (st *state) udpClose(L *lua.LState) int {
	u := udpSock(L, "close")
	if u.conn == nil {
		return fail(L, "closed")
	}
	u.conn.Close()
	u.conn = nil
	L.Push(lua.LNumber(1))
	return 1
}

// connFD is c's file descriptor, for nginx's debug lines (0 when it has
// none to show).
func connFD(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	fd := 0
	rc.Control(func(p uintptr) { fd = int(p) })
	return fd
}
