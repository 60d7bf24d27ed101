package luahooks

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

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
		st.udpMeta = L.NewTable()
		st.udpMeta.RawSetString("__index", methods)
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
	c, err := net.Dial(network, addr)
	if err != nil {
		st.sockLogf(L, "connect() failed (%s)", errnoText(err))
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
		if msg == "timeout" {
			st.sockLogf(L, "lua udp socket read timed out")
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
