package luahooks

import (
	"net"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Balancer is what a balancer_by_lua run sees of its upstream attempt and
// what it decides (lua-resty-core's ngx.balancer over lua-nginx-module
// 0.10.23). The caller fills the attempt's facts in Request.Balancer
// before each run and reads the choices after it.
type Balancer struct {
	// Facts of the attempt, set by the caller.

	// Tries is how many attempts the request has left, this one included
	// (nginx's peer.tries); TotalTries how many times the hook ran for
	// this request, this run included; MaxTries proxy_next_upstream_tries
	// (0: no limit). set_more_tries clamps with them.
	Tries, TotalTries, MaxTries int
	// LastState is the previous attempt's end when the hook chose its
	// server: "failed" or "next" ("" for none); LastStatus its status.
	LastState  string
	LastStatus int

	// Choices of the run, reset by the caller before each run.

	// Addr is set_current_peer's "ip:port" ("" lets the upstream's
	// servers be picked as without the hook).
	Addr string
	// MoreTries is set_more_tries' count, after the clamp.
	MoreTries int
	// ConnectTimeout, SendTimeout and ReadTimeout are set_timeouts'
	// values (0: unchanged).
	ConnectTimeout, SendTimeout, ReadTimeout time.Duration
}

// openNgxBalancer is `require "ngx.balancer"`. Outside balancer_by_lua its
// functions answer nil and lua-nginx-module's "no upstream found" (no
// request in init: they raise "no request found").
func (st *state) openNgxBalancer() *lua.LTable {
	// current returns the run's Balancer, or why there is none.
	current := func(L *lua.LState) (*Balancer, string) {
		if st.inInit || st.r.req == nil {
			L.RaiseError("no request found")
		}
		switch b := st.r.req.Balancer; {
		case b == nil:
			return nil, "no upstream found"
		case st.r.phase != PhaseBalancer:
			return nil, "API disabled in the current context"
		default:
			return b, ""
		}
	}
	fail := func(L *lua.LState, msg string) int {
		L.Push(lua.LNil)
		L.Push(lua.LString(msg))
		return 2
	}
	m := st.funcTable(map[string]lua.LGFunction{
		"set_current_peer": func(L *lua.LState) int {
			addr := L.CheckString(1)
			port := 0
			switch v := L.Get(2).(type) {
			case lua.LNumber:
				port = int(v)
			case lua.LString:
				n, _ := strconv.ParseFloat(string(v), 64)
				port = int(n)
			}
			b, msg := current(L)
			if b == nil {
				return fail(L, msg)
			}
			hostport, msg := peerAddr(addr, port)
			if msg != "" {
				return fail(L, msg)
			}
			b.Addr = hostport
			L.Push(lua.LTrue)
			return 1
		},
		"set_more_tries": func(L *lua.LState) int {
			count := L.CheckInt(1)
			b, msg := current(L)
			if b == nil {
				return fail(L, msg)
			}
			total := b.TotalTries + b.Tries - 1
			L.Push(lua.LTrue)
			if b.MaxTries > 0 && total+count > b.MaxTries {
				b.MoreTries = b.MaxTries - total
				L.Push(lua.LString("reduced tries due to limit"))
				return 2
			}
			b.MoreTries = count
			return 1
		},
		"get_last_failure": func(L *lua.LState) int {
			b, msg := current(L)
			if b == nil {
				L.Push(lua.LNil)
				return 1 + fail(L, msg)
			}
			if b.LastState == "" {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LString(b.LastState))
			L.Push(lua.LNumber(b.LastStatus))
			return 2
		},
		"set_timeouts": func(L *lua.LState) int {
			var d [3]time.Duration
			for i, what := range [3]string{"connect", "send", "read"} {
				switch v := L.Get(i + 1).(type) {
				case *lua.LNilType:
				case lua.LNumber:
					if v <= 0 {
						cError(L, "bad %s timeout", what)
					}
					d[i] = time.Duration(float64(v) * float64(time.Second)).Truncate(time.Millisecond)
				default:
					cError(L, "bad %s timeout", what)
				}
			}
			b, msg := current(L)
			if b == nil {
				L.Push(lua.LFalse)
				L.Push(lua.LString(msg))
				return 2
			}
			for i, p := range [3]*time.Duration{&b.ConnectTimeout, &b.SendTimeout, &b.ReadTimeout} {
				if d[i] > 0 {
					*p = d[i]
				}
			}
			L.Push(lua.LTrue)
			return 1
		},
		// The request is built again for every attempt here, so there is
		// nothing to recreate.
		"recreate_request": func(L *lua.LState) int {
			if b, msg := current(L); b == nil {
				return fail(L, msg)
			}
			L.Push(lua.LTrue)
			return 1
		},
	})
	m.RawSetString("version", lua.LString(restyCoreVersion))
	return m
}

// restyCoreVersion is the lua-resty-core release paired with
// lua-nginx-module 0.10.23.
const restyCoreVersion = "0.1.25"

// peerAddr is ngx_parse_url with no_resolve for set_current_peer: an IPv4
// or bracketed IPv6 address with an optional port (port when none), or
// nginx's error text.
func peerAddr(addr string, port int) (string, string) {
	host, p := addr, ""
	if strings.HasPrefix(addr, "[") {
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return "", "invalid host"
		}
		host, p = addr[1:end], addr[end+1:]
		if p != "" && !strings.HasPrefix(p, ":") {
			return "", "invalid host"
		}
		p = strings.TrimPrefix(p, ":")
	} else if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		host, p = addr[:i], addr[i+1:]
	}
	if p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", "invalid port"
		}
		port = n
	}
	if host == "" {
		return "", "no host"
	}
	if net.ParseIP(host) == nil {
		return "", "no host allowed"
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), ""
}
