package vars

import (
	"strconv"

	"ngxsockify/proxyproto"
)

// The $proxy_protocol_* variables: the addresses of the connection's PROXY
// protocol header (listen ... proxy_protocol), which the connection layer
// puts in the request's context. Not found on other connections and when
// the header carried none (PROXY UNKNOWN, a version 2 LOCAL command).
func init() {
	for name, b := range map[string]builtin{
		"proxy_protocol_addr":        proxyProtocolVar(func(h *proxyproto.Header) string { return h.SrcAddr }),
		"proxy_protocol_port":        proxyProtocolVar(func(h *proxyproto.Header) string { return portText(h.SrcPort) }),
		"proxy_protocol_server_addr": proxyProtocolVar(func(h *proxyproto.Header) string { return h.DstAddr }),
		"proxy_protocol_server_port": proxyProtocolVar(func(h *proxyproto.Header) string { return portText(h.DstPort) }),
	} {
		builtins[name] = b
	}
}

func proxyProtocolVar(get func(h *proxyproto.Header) string) builtin {
	return builtin{get: func(r *Request) (string, bool) {
		h := proxyproto.FromContext(r.HTTP.Context())
		if h == nil {
			return "", false
		}
		return get(h), true
	}}
}

// portText is a port as nginx's variables print it: 0 is "".
func portText(p uint16) string {
	if p == 0 {
		return ""
	}
	return strconv.Itoa(int(p))
}
