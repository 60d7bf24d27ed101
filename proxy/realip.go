package proxy

import (
	"net"
	"strings"

	"ngxsockify/nginxconf"
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
	if !trusted(clientIP(rq.r)) {
		return
	}
	var addr net.IP
	if strings.EqualFold(conf.RealIPHeader, "X-Forwarded-For") {
		var list []string
		for _, v := range rq.r.Header.Values("X-Forwarded-For") {
			list = append(list, strings.Split(v, ",")...)
		}
		for i := len(list) - 1; i >= 0; i-- {
			a := net.ParseIP(strings.TrimSpace(list[i]))
			if a == nil {
				return
			}
			addr = a
			if !conf.RealIPRecursive || !trusted(a) {
				break
			}
		}
	} else {
		addr = net.ParseIP(strings.TrimSpace(rq.r.Header.Get(conf.RealIPHeader)))
	}
	if addr == nil {
		return
	}
	_, port, _ := net.SplitHostPort(rq.r.RemoteAddr)
	if port == "" {
		port = "0"
	}
	rq.r.RemoteAddr = net.JoinHostPort(addr.String(), port)
	rq.realIPDone = true // like nginx, only an address actually set ends the module's work
}
