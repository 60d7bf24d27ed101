package vars

import (
	"strings"
)

// Referers is a location's valid_referers (ngx_http_referer_module), read
// by $invalid_referer.
type Referers struct {
	none, blocked bool
	// exact, head ("*.example.com" and ".example.com" as "example.com"),
	// dot (".example.com" also matches example.com itself) and tail
	// ("www.example.*" as "www.example") map host names to the URI prefix
	// the referer must have ("" for none).
	exact, head, tail map[string]string
	regexes           []*Regex
	// nameRegexes are server_names' regexes: nginx matches them against
	// the referer's host (lower case) alone, valid_referers' own ones
	// against all that follows the scheme.
	nameRegexes []*Regex
}

// NewReferers compiles valid_referers' values; serverNames are the
// server's names (for server_names), regexes there with their "~".
func NewReferers(values, serverNames []string) (*Referers, error) {
	rf := &Referers{exact: map[string]string{}, head: map[string]string{}, tail: map[string]string{}}
	add := func(v string) error {
		if strings.HasPrefix(v, "~") {
			re, err := CompileRegex(v[1:], true)
			if err != nil {
				return err
			}
			rf.regexes = append(rf.regexes, re)
			return nil
		}
		host, uri, _ := strings.Cut(v, "/")
		if uri != "" || strings.Contains(v, "/") {
			uri = "/" + uri
		}
		host = strings.ToLower(host)
		switch {
		case strings.HasPrefix(host, "*."):
			rf.head[host[2:]] = uri
		case strings.HasPrefix(host, "."):
			rf.head[host[1:]] = uri
			rf.exact[host[1:]] = uri
		case strings.HasSuffix(host, ".*"):
			rf.tail[host[:len(host)-2]] = uri
		default:
			rf.exact[host] = uri
		}
		return nil
	}
	for _, v := range values {
		switch v {
		case "none":
			rf.none = true
		case "blocked":
			rf.blocked = true
		case "server_names":
			for _, n := range serverNames {
				if strings.HasPrefix(n, "~") {
					re, err := CompileRegex(n[1:], true)
					if err != nil {
						return nil, err
					}
					rf.nameRegexes = append(rf.nameRegexes, re)
					continue
				}
				if n != "" {
					if err := add(n); err != nil {
						return nil, err
					}
				}
			}
		default:
			if err := add(v); err != nil {
				return nil, err
			}
		}
	}
	return rf, nil
}

// Invalid is $invalid_referer's test: whether the Referer header (has:
// whether there is one) is not one valid_referers allows.
func (rf *Referers) Invalid(ref string, has bool) bool {
	if rf == nil || len(rf.exact)+len(rf.head)+len(rf.tail)+len(rf.regexes)+len(rf.nameRegexes) == 0 && !rf.none && !rf.blocked {
		return false
	}
	if !has {
		return !rf.none
	}
	var rest string
	switch {
	case len(ref) >= len("http://i.ru") && strings.EqualFold(ref[:7], "http://"):
		rest = ref[7:]
	case len(ref) >= len("https://i.ru") && strings.EqualFold(ref[:8], "https://"):
		rest = ref[8:]
	default:
		return !rf.blocked
	}
	end := strings.IndexAny(rest, "/:")
	if end < 0 {
		end = len(rest)
	}
	if end > 256 {
		return true
	}
	host := strings.ToLower(rest[:end])
	if uri, ok := rf.lookup(host); ok {
		path := rest[end:]
		if i := strings.IndexByte(path, '/'); i >= 0 {
			path = path[i:]
		} else {
			path = ""
		}
		return uri != "" && !strings.HasPrefix(path, uri)
	}
	for _, re := range rf.regexes {
		if _, ok := re.Match(rest); ok {
			return false
		}
	}
	for _, re := range rf.nameRegexes {
		if _, ok := re.Match(host); ok {
			return false
		}
	}
	return true
}

func (rf *Referers) lookup(host string) (string, bool) {
	if uri, ok := rf.exact[host]; ok {
		return uri, true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if uri, ok := rf.head[host[i+1:]]; ok {
				return uri, true
			}
		}
	}
	for i := len(host) - 1; i > 0; i-- {
		if host[i] == '.' {
			if uri, ok := rf.tail[host[:i]]; ok {
				return uri, true
			}
		}
	}
	return "", false
}
