package proxy

import (
	"strings"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/proxy/http1"
)

// addrGroup is the set of servers listening on one address, with the
// structures nginx uses to pick one by Host.
type addrGroup struct {
	servers []*nginxconf.Server
	def     *nginxconf.Server
	exact   map[string]*nginxconf.Server
	// wildcards and regexes in order of appearance; wildcards are tried longest first
	prefix []wild
	suffix []wild
	regex  []regexName
	// proxyProtocol: the address's connections start with a PROXY
	// protocol header (one of its listens says proxy_protocol)
	proxyProtocol bool
	// maxHeadersVary: its servers' max_headers differ, rulesVary: their
	// max_headers, underscores_in_headers, ignore_invalid_headers or
	// large_client_header_buffers (finish), so the connection layer asks lineRulesFor once a host
	// is known
	maxHeadersVary, rulesVary bool
}

type wild struct {
	pattern string
	srv     *nginxconf.Server
	dotted  bool // ".example.com" form: also matches example.com
}

type regexName struct {
	re  *vars.Regex
	srv *nginxconf.Server
}

func newAddrGroup() *addrGroup {
	return &addrGroup{exact: map[string]*nginxconf.Server{}}
}

func (g *addrGroup) add(s *nginxconf.Server, isDefault bool) {
	g.servers = append(g.servers, s)
	if g.def == nil || isDefault {
		if isDefault || g.def == nil {
			g.def = s
		}
	}
	for _, n := range s.Names {
		switch n.Kind {
		case nginxconf.NameExact:
			if _, dup := g.exact[n.Name]; !dup {
				g.exact[n.Name] = s
			}
		case nginxconf.NameWildcardPrefix:
			dotted := strings.HasPrefix(n.Name, ".")
			if dotted {
				if _, dup := g.exact[n.Name[1:]]; !dup {
					g.exact[n.Name[1:]] = s
				}
			}
			g.prefix = append(g.prefix, wild{pattern: n.Suffix, srv: s, dotted: dotted})
		case nginxconf.NameWildcardSuffix:
			g.suffix = append(g.suffix, wild{pattern: n.Prefix, srv: s})
		case nginxconf.NameRegex:
			g.regex = append(g.regex, regexName{re: n.Regex, srv: s})
		}
	}
}

// finish orders wildcards longest first, as nginx's hash lookup prefers the
// most specific wildcard.
func (g *addrGroup) finish() {
	longestFirst := func(ws []wild) {
		for i := 1; i < len(ws); i++ {
			for j := i; j > 0 && len(ws[j].pattern) > len(ws[j-1].pattern); j-- {
				ws[j], ws[j-1] = ws[j-1], ws[j]
			}
		}
	}
	longestFirst(g.prefix)
	longestFirst(g.suffix)
	for _, s := range g.servers {
		if g.def == nil {
			break
		}
		if s.Conf.MaxHeaders != g.def.Conf.MaxHeaders {
			g.maxHeadersVary = true
		}
		if lineRules(s) != lineRules(g.def) {
			g.rulesVary = true
		}
	}
}

// lineRulesFor is the header-line settings of the server host selects.
func (g *addrGroup) lineRulesFor(host string) http1.LineRules {
	s, _ := g.find(host)
	return lineRules(s)
}

func lineRules(s *nginxconf.Server) http1.LineRules {
	c := s.Conf
	return http1.LineRules{MaxHeaders: c.MaxHeaders, Underscores: c.UnderscoresInHeaders, KeepInvalidHeaders: c.KeepInvalidHeaders,
		LargeBufferSize: c.LargeHeaderBufferSize, LargeBuffers: c.LargeHeaderBuffers}
}

// find picks the server for host (already lowercased, without port). It
// returns regex captures when a regex name matched.
func (g *addrGroup) find(host string) (*nginxconf.Server, *vars.Captures) {
	if s, caps, ok := g.match(host); ok {
		return s, caps
	}
	return g.def, nil
}

// match is find without the default server: ok is false when no name
// matched host.
func (g *addrGroup) match(host string) (*nginxconf.Server, *vars.Captures, bool) {
	if s, ok := g.exact[host]; ok {
		return s, nil, true
	}
	if host != "" {
		for _, w := range g.prefix {
			if strings.HasSuffix(host, w.pattern) && len(host) > len(w.pattern) {
				return w.srv, nil, true
			}
		}
		for _, w := range g.suffix {
			if strings.HasPrefix(host, w.pattern) && len(host) > len(w.pattern) {
				return w.srv, nil, true
			}
		}
		for _, r := range g.regex {
			// a server_name regex past the match limit counts as no match:
			// nginx's server lookup has no error path either
			if caps, ok := r.re.Match(host); ok {
				return r.srv, caps, true
			}
		}
	}
	return nil, nil, false
}

// findLocation runs nginx's location search (ngx_http_core_find_location)
// over tree for uri. It returns nil when nothing matches.
func findLocation(tree *nginxconf.LocTree, uri string) (*nginxconf.Location, *vars.Captures) {
	loc, caps, _, _ := searchLocations(tree, uri)
	return loc, caps
}

// regexFailure is a regex that ran into the match limit while choosing a
// server or location: the request fails (500), as in nginx.
type regexFailure struct {
	re      *vars.Regex
	subject string
}

// search results, as nginx's NGX_OK / NGX_AGAIN / NGX_DECLINED.
const (
	locDeclined = iota // nothing matched at this level
	locPrefix          // a prefix location matched; regexes may still win
	locFinal           // an exact or regex location matched
	// locAutoRedirect: the URI is the name, without its "/", of a location
	// with auto_redirect (nginx's NGX_DONE): answer 301 to the name
	locAutoRedirect
)

func searchLocations(tree *nginxconf.LocTree, uri string) (*nginxconf.Location, *vars.Captures, int, *regexFailure) {
	if tree == nil {
		return nil, nil, locDeclined, nil
	}
	if loc, ok := tree.Exact[uri]; ok {
		return loc, nil, locFinal, nil
	}
	var cur *nginxconf.Location
	var caps *vars.Captures
	rc := locDeclined
	noregex := false
	for _, l := range tree.Prefix {
		if strings.HasPrefix(uri, l.Path) {
			cur, rc = l, locPrefix
			noregex = l.Modifier == nginxconf.ModNoRegex
			break
		}
	}
	if ar, ok := tree.AutoRedirect[uri]; ok && (cur == nil || cur.Path != uri) {
		// nginx's static search meets the name+"/" node on its way down
		// and nothing named uri itself comes after it
		return ar, nil, locAutoRedirect, nil
	}
	if cur != nil && cur.Nested != nil {
		l2, c2, rc2, fail := searchLocations(cur.Nested, uri)
		if fail != nil {
			return nil, nil, locDeclined, fail
		}
		if rc2 != locDeclined {
			cur, caps = l2, c2
			if rc2 == locFinal || rc2 == locAutoRedirect {
				return cur, caps, rc2, nil
			}
		}
	}
	if noregex {
		return cur, caps, rc, nil
	}
	for _, l := range tree.Regex {
		m, ok, err := l.Regex.Exec(uri)
		if err != nil {
			return nil, nil, locDeclined, &regexFailure{l.Regex, uri}
		}
		if !ok {
			continue
		}
		if l.Nested != nil {
			l2, c2, rc2, fail := searchLocations(l.Nested, uri)
			if fail != nil {
				return nil, nil, locDeclined, fail
			}
			if rc2 != locDeclined {
				if c2 == nil {
					c2 = m
				}
				return l2, c2, locFinal, nil
			}
		}
		return l, m, locFinal, nil
	}
	return cur, caps, rc, nil
}
