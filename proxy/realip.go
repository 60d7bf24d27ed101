package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"ngxsockify/nginxconf"
	"ngxsockify/proxyproto"
)

// realipModule is nginx's ngx_http_realip_module: in the post-read phase
// with the server's settings, in the pre-access phase with the location's.
var realipModule = module{
	name: "realip",
	register: func(e *engine) {
		e.add(phasePostRead, func(rq *request) rc { rq.realIP(rq.srv.Conf); return rcDeclined })
		e.add(phasePreAccess, func(rq *request) rc { rq.realIP(rq.conf); return rcDeclined })
	},
}

// realIP replaces the client address with the one a trusted proxy sent
// (set_real_ip_from, real_ip_header, real_ip_recursive), at most once per
// request, as nginx's realip module does in its post-read phase (server
// settings) and pre-access phase (location settings).
func (rq *request) realIP(conf *nginxconf.LocConf) {
	if rq.realIPDone || len(conf.RealIPFrom) == 0 {
		return
	}
	trusted := func(ip net.IP) bool {
		for _, r := range conf.RealIPFrom {
			switch {
			case r.Unix:
				if ip == nil {
					return true
				}
			case r.Net != nil && ip != nil:
				v := ip
				if v4 := ip.To4(); v4 != nil && len(r.Net.IP) == 4 {
					v = v4
				}
				if r.Net.Contains(v) {
					return true
				}
			}
		}
		return false
	}
	var values []string // X-Forwarded-For: every such header; else the first
	var pp *proxyproto.Header
	switch {
	case conf.RealIPHeader == "proxy_protocol":
		// the PROXY protocol header's client address, and its port
		if pp = proxyproto.FromContext(rq.r.Context()); pp == nil {
			return
		}
		values = []string{pp.SrcAddr}
	case strings.EqualFold(conf.RealIPHeader, "X-Forwarded-For"):
		values = rq.r.Header.Values("X-Forwarded-For")
	default:
		if v, ok := rq.r.Header[http.CanonicalHeaderKey(conf.RealIPHeader)]; ok && len(v) > 0 {
			values = v[:1]
		}
	}
	addr, ok := forwardedAddr(clientIP(rq.r), values, trusted, conf.RealIPRecursive)
	if !ok {
		return
	}
	if pp != nil {
		host, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, strconv.Itoa(int(pp.SrcPort)))
	}
	rq.v.RealIPRemote = rq.r.RemoteAddr
	rq.r.RemoteAddr = addr
	rq.realIPDone = true // like nginx, only an address actually set ends the module's work
}

// forwardedAddr is nginx's ngx_http_get_forwarded_addr: from the last
// header's last address backwards, each address is taken while the one
// before it (first the peer's) is trusted; without recursive only one.
// Addresses are "ip", "ip:port" or "[ipv6]:port", separated by commas and
// spaces; an invalid one stops the walk. It returns host:port (port empty
// when the header named none) and whether an address was taken.
func forwardedAddr(peer net.IP, values []string, trusted func(net.IP) bool, recursive bool) (string, bool) {
	cur, found := peer, ""
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for {
			if !trusted(cur) {
				return found, found != ""
			}
			list = strings.TrimRight(list, ", ")
			j := strings.LastIndexAny(list, ", ")
			if j == 0 {
				// nginx never reads the first byte as a separator: the
				// first element keeps a leading comma, and fails.
				j = -1
			}
			ip, port, ok := parseAddrPort(list[j+1:])
			if !ok {
				return found, found != ""
			}
			cur, found = ip.AsSlice(), net.JoinHostPort(ip.String(), port)
			list = list[:max(j, 0)]
			if !recursive || list == "" {
				break
			}
		}
		if !recursive {
			break
		}
	}
	return found, found != ""
}

// parseAddrPort is nginx's ngx_parse_addr_port: "ip", "ip:port" or
// "[ipv6]:port", the port 1-65535 ("" when none).
func parseAddrPort(s string) (netip.Addr, string, bool) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return ip, "", true
	}
	if ip, ok := inetAddr(s); ok {
		return ip, "", true
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.Contains(host, ":") && !strings.HasPrefix(s, "[") {
		return netip.Addr{}, "", false
	}
	ip, err := netip.ParseAddr(host)
	if v4, ok := inetAddr(host); err != nil && ok {
		ip, err = v4, nil
	}
	n, perr := strconv.Atoi(port)
	if err != nil || ip.Zone() != "" || perr != nil || n < 1 || n > 65535 {
		return netip.Addr{}, "", false
	}
	return ip, strconv.Itoa(n), true
}

// inetAddr is nginx's ngx_inet_addr: four decimal octets, leading zeros
// allowed ("010" is 10) and empty ones read as 0, each at most 255.
func inetAddr(s string) (netip.Addr, bool) {
	var b [4]byte
	octet, n := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if octet = octet*10 + int(c-'0'); octet > 255 {
				return netip.Addr{}, false
			}
		case c == '.' && n < 3:
			b[n], octet = byte(octet), 0
			n++
		default:
			return netip.Addr{}, false
		}
	}
	if n != 3 {
		return netip.Addr{}, false
	}
	b[3] = byte(octet)
	return netip.AddrFrom4(b), true
}
