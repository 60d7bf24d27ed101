package proxy

import (
	"net"
	"net/http"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
)

// accessModule is nginx's ngx_http_access_module: allow and deny.
var accessModule = module{
	name: "access",
	register: func(e *engine) {
		e.add(phaseAccess, accessRules)
	},
}

// accessRules applies allow/deny: the first rule that matches grants or
// refuses; no match has no opinion. Under satisfy all a refusal is logged
// here, under satisfy any by the post-access phase if nothing grants.
func accessRules(rq *request) rc {
	ruled, allowed := rq.checkRules(rq.conf)
	switch {
	case !ruled:
		return rcDeclined
	case allowed:
		return rcOK
	}
	if !rq.conf.SatisfyAny {
		rq.logf(ngxlog.Err, `access forbidden by rule`)
	}
	return http.StatusForbidden
}

// checkRules applies allow/deny in order; ruled is false when no rule matched.
func (rq *request) checkRules(conf *nginxconf.LocConf) (ruled, allowed bool) {
	if len(conf.Access) == 0 {
		return false, false
	}
	ip := clientIP(rq.r)
	for _, rule := range conf.Access {
		if ruleMatches(rule, ip) {
			return true, rule.Allow
		}
	}
	return false, false
}

// ruleMatches reports whether an address rule (allow, deny,
// debug_connection) covers a client at ip (nil: a unix socket's).
func ruleMatches(rule nginxconf.AccessRule, ip net.IP) bool {
	switch {
	case rule.All:
		return true
	case rule.Unix:
		return ip == nil
	case rule.Net != nil:
		if ip == nil {
			return false
		}
		if v4 := ip.To4(); v4 != nil && len(rule.Net.IP) == 4 {
			ip = v4
		}
		return rule.Net.Contains(ip)
	}
	return false
}
