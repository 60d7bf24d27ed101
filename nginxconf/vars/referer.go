package vars

import (
	"errors"
	"fmt"
	"strings"
)

// Referers is a location's valid_referers (ngx_http_referer_module), read
// by $invalid_referer. It is built at load time: NewReferers, Add for each
// value of the level's valid_referers directives, then Finish with the
// server's names.
type Referers struct {
	none, blocked, serverNames bool
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

// NewReferers returns an empty list, for a level's first valid_referers.
func NewReferers() *Referers {
	return &Referers{exact: map[string]string{}, head: map[string]string{}, tail: map[string]string{}}
}

// Add adds one value of valid_referers: none, blocked, server_names (the
// names are added by Finish), a "~" regex, or a host name or wildcard
// with an optional URI part ("example.com/galleries/"). Errors read as
// nginx's.
func (rf *Referers) Add(v string) error {
	switch {
	case v == "":
		return fmt.Errorf(`invalid referer "%s"`, v)
	case v == "none":
		rf.none = true
	case v == "blocked":
		rf.blocked = true
	case v == "server_names":
		rf.serverNames = true
	case strings.HasPrefix(v, "~"):
		if v == "~" {
			return fmt.Errorf(`empty regex in "%s"`, v)
		}
		re, err := CompileRegex(v[1:], true)
		if err != nil {
			return err
		}
		rf.regexes = append(rf.regexes, re)
	default:
		host, uri := v, ""
		if i := strings.IndexByte(v, '/'); i >= 0 {
			host, uri = v[:i], v[i:]
		}
		return rf.addKey(host, uri)
	}
	return nil
}

// addKey adds a host name as nginx's hash of names with wildcards takes
// one: at most one "*", no "..", a wildcard only as "*.name", ".name" or
// "name.*"; a name given twice (in any case; ".name" is also "name") is
// "conflicting".
func (rf *Referers) addKey(key, uri string) error {
	stars := strings.Count(key, "*")
	if stars > 1 || strings.Contains(key, "..") {
		return fmt.Errorf(`invalid hostname or wildcard "%s"`, key)
	}
	conflict := func() error { return fmt.Errorf(`conflicting parameter "%s"`, strings.ToLower(key)) }
	lk := strings.ToLower(key)
	switch {
	case len(key) > 1 && key[0] == '.':
		name := lk[1:]
		if _, dup := rf.exact[name]; dup {
			return conflict()
		}
		rf.exact[name] = uri
		if _, dup := rf.head[name]; dup {
			return conflict()
		}
		rf.head[name] = uri
	case len(key) > 2 && strings.HasPrefix(key, "*."):
		name := lk[2:]
		if _, dup := rf.head[name]; dup {
			return conflict()
		}
		rf.head[name] = uri
	case len(key) > 2 && strings.HasSuffix(key, ".*"):
		name := lk[:len(lk)-2]
		if _, dup := rf.tail[name]; dup {
			return conflict()
		}
		rf.tail[name] = uri
	case stars > 0:
		return fmt.Errorf(`invalid hostname or wildcard "%s"`, key)
	default:
		if _, dup := rf.exact[lk]; dup {
			return conflict()
		}
		rf.exact[lk] = uri
	}
	return nil
}

// ErrNoValidReferer is nginx's refusal of a level whose valid_referers
// allow "none" or "blocked" and no host name (regexes do not count).
var ErrNoValidReferer = errors.New(`the "none" or "blocked" referers are specified in the "valid_referers" directive without any valid referer`)

// Finish completes the list once the server is known, as nginx's merge
// does: under server_names the server's names are added (regexes with
// their "~"; a server without server_name has the name ""), a name taken
// already is "conflicting" (nameErr); then a list that allows "none" or
// "blocked" and no host name is refused (ErrNoValidReferer).
func (rf *Referers) Finish(serverNames []string) (nameErr, err error) {
	if rf.serverNames {
		for _, n := range serverNames {
			if strings.HasPrefix(n, "~") {
				re, err := CompileRegex(n[1:], true)
				if err != nil {
					return err, nil
				}
				rf.nameRegexes = append(rf.nameRegexes, re)
				continue
			}
			if err := rf.addKey(n, ""); err != nil {
				return err, nil
			}
		}
	}
	if (rf.none || rf.blocked) && len(rf.exact)+len(rf.head)+len(rf.tail) == 0 {
		return nil, ErrNoValidReferer
	}
	return nil, nil
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
