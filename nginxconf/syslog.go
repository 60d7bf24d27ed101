package nginxconf

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"
)

// SyslogPeer is a "syslog:" log target (error_log, access_log), as
// nginx's ngx_syslog_process_conf reads it: lines go as UDP datagrams
// (a unix datagram socket for server=unix:path) with an RFC 3164 header.
type SyslogPeer struct {
	Network, Addr string // "udp" and host:port, or "unixgram" and a path
	Facility      int    // facility= (default local7, 23)
	// Severity is severity= (default info, 6): access-log lines take it,
	// error-log lines their own level's.
	Severity   int
	Tag        string // tag= (default "nginx")
	NoHostname bool
}

var syslogFacilities = strings.Fields(`kern user mail daemon auth intern lpr news uucp clock authpriv
	ftp ntp audit alert cron local0 local1 local2 local3 local4 local5 local6 local7`)

var syslogSeverities = strings.Fields(`emerg alert crit error warn notice info debug`)

// syslogPeer parses a target's "syslog:param,param..." as nginx's
// ngx_syslog_parse_args, with its messages.
func (c *compiler) syslogPeer(d *Directive, target string) *SyslogPeer {
	p := &SyslogPeer{Facility: -1, Severity: -1}
	rest := strings.TrimPrefix(target, "syslog:")
	for rest != "" {
		param, next, _ := strings.Cut(rest, ",")
		switch {
		case strings.HasPrefix(param, "server="):
			if p.Addr != "" {
				c.fail(d, `duplicate syslog "server"`)
			}
			p.Network, p.Addr = c.syslogServer(d, param[len("server="):])
		case strings.HasPrefix(param, "facility="):
			p.Facility = c.syslogName(d, "facility", syslogFacilities, p.Facility, param[len("facility="):])
		case strings.HasPrefix(param, "severity="):
			p.Severity = c.syslogName(d, "severity", syslogSeverities, p.Severity, param[len("severity="):])
		case strings.HasPrefix(param, "tag="):
			if p.Tag != "" {
				c.fail(d, `duplicate syslog "tag"`)
			}
			p.Tag = param[len("tag="):]
			if len(p.Tag) > 32 {
				c.fail(d, "syslog tag length exceeds 32")
			}
			for _, r := range p.Tag {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
					c.fail(d, `syslog "tag" only allows alphanumeric characters and underscore`)
				}
			}
		case param == "nohostname":
			p.NoHostname = true
		default:
			c.fail(d, `unknown syslog parameter "%s"`, param)
		}
		rest = next
	}
	if p.Addr == "" {
		c.fail(d, "no syslog server specified")
	}
	if p.Facility < 0 {
		p.Facility = 23 // local7
	}
	if p.Severity < 0 {
		p.Severity = 6 // info
	}
	if p.Tag == "" {
		p.Tag = "nginx"
	}
	return p
}

// syslogName is the number of a facility= or severity= value (its place
// in names); prev is the one already set (-1: none).
func (c *compiler) syslogName(d *Directive, what string, names []string, prev int, v string) int {
	if prev >= 0 {
		c.fail(d, `duplicate syslog "%s"`, what)
	}
	for i, n := range names {
		if n == v {
			return i
		}
	}
	c.fail(d, `unknown syslog %s "%s"`, what, v)
	return -1
}

// syslogServer resolves server=: unix:path, or host[:port] (port 514),
// a name resolved now to its first address, as nginx's ngx_parse_url.
func (c *compiler) syslogServer(d *Directive, v string) (network, addr string) {
	if path, ok := strings.CutPrefix(v, "unix:"); ok {
		return "unixgram", path
	}
	host, port, err := net.SplitHostPort(defaultPort(v, "514"))
	if err != nil || host == "" {
		c.fail(d, `no host in syslog server "%s"`, v)
		return "", ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.fail(d, `invalid port in syslog server "%s"`, v)
	}
	if net.ParseIP(host) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(ips) == 0 {
			c.fail(d, `host not found in syslog server "%s"`, v)
			return "", ""
		}
		host = ips[0]
	}
	return "udp", net.JoinHostPort(host, port)
}
