package vars

import (
	"errors"
	"strings"
)

// ErrBadURI is returned for request targets nginx answers with 400: an
// invalid or NUL %XX escape, or a path that climbs above the root ("/../x").
var ErrBadURI = errors.New("client sent invalid request")

// SplitRequestURI splits a raw request target (as on the request line, e.g.
// r.RequestURI) into its path and its query ($args). hasArgs is true when a
// '?' was present. A raw "#" ends both (nginx ignores the fragment). The
// absolute form "http://host/p?q" yields "/p" and "q".
func SplitRequestURI(raw string) (path, args string, hasArgs bool) {
	if i := strings.Index(raw, "://"); i > 0 && raw[0] != '/' {
		rest := raw[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "/", "", false
		}
		raw = rest[j:]
		if raw[0] == '?' {
			raw = "/" + raw
		}
	}
	if i := strings.IndexByte(raw, '#'); i >= 0 { // a fragment ends path and query, as in nginx
		raw = raw[:i]
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i], raw[i+1:], true
	}
	return raw, "", false
}

// NormalizeURI turns a raw request path into nginx's $uri: %XX escapes are
// decoded (a decoded "/" or "." takes part in what follows), runs of slashes
// merge into one (merge_slashes on), "." segments vanish and ".." removes
// the segment before it. A ".." above the root, an invalid escape, %00 or a
// raw control character give ErrBadURI, as nginx answers 400. "+" stays "+".
func NormalizeURI(raw string) (string, error) {
	return NormalizeURIMerge(raw, true)
}

// NormalizeURIMerge is NormalizeURI with nginx's merge_slashes setting:
// with merge false, empty segments stay ("/a//b/../c" is "/a//c").
func NormalizeURIMerge(raw string, merge bool) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", ErrBadURI
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f { // nginx >= 1.21.1 refuses raw controls
			return "", ErrBadURI
		}
	}
	dec := raw
	if strings.IndexByte(raw, '%') >= 0 {
		b := make([]byte, 0, len(raw))
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c != '%' {
				b = append(b, c)
				continue
			}
			if i+2 >= len(raw) {
				return "", ErrBadURI
			}
			h, ok1 := unhex(raw[i+1])
			l, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 || h == 0 && l == 0 {
				return "", ErrBadURI
			}
			b = append(b, h<<4|l)
			i += 2
		}
		dec = string(b)
	}
	if !needsClean(dec) {
		return dec, nil
	}
	if !merge {
		return cleanKeepSlashes(dec)
	}
	segs := make([]string, 0, 8)
	trailing := false
	for _, s := range strings.Split(dec[1:], "/") {
		trailing = false
		switch s {
		case "":
			trailing = true
		case ".":
			trailing = true
		case "..":
			if len(segs) == 0 {
				return "", ErrBadURI
			}
			segs = segs[:len(segs)-1]
			trailing = true
		default:
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return "/", nil
	}
	out := "/" + strings.Join(segs, "/")
	if trailing {
		out += "/"
	}
	return out, nil
}

// cleanKeepSlashes resolves "." and ".." segments without merging slashes.
func cleanKeepSlashes(p string) (string, error) {
	parts := strings.Split(p[1:], "/")
	segs := make([]string, 0, len(parts))
	for i, s := range parts {
		last := i == len(parts)-1
		switch s {
		case ".":
		case "..":
			if len(segs) == 0 {
				return "", ErrBadURI
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
			continue
		}
		if last { // "/a/." and "/a/.." end with a slash
			segs = append(segs, "")
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}

// needsClean reports whether p has "//", or a "." or ".." segment.
func needsClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		if i+1 < len(p) && p[i+1] == '/' {
			return true
		}
		if i+1 < len(p) && p[i+1] == '.' {
			if i+2 == len(p) || p[i+2] == '/' {
				return true
			}
			if p[i+2] == '.' && (i+3 == len(p) || p[i+3] == '/') {
				return true
			}
		}
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// UnescapeRedirect decodes s as nginx's ngx_unescape_uri with
// NGX_UNESCAPE_REDIRECT does a redirecting rewrite's result: up to the
// first "?" (literal or %3F, kept as "?"), a %XX escape of a byte above
// '%' and below 0x7F is decoded, other escapes stay; a "%" not followed by
// a hex digit is dropped (its next byte kept), one followed by a single
// hex digit is dropped with both bytes, as is a trailing incomplete
// escape. The rest after the "?" is copied as it is.
func UnescapeRedirect(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	if q := strings.IndexByte(s, '?'); q >= 0 && q < i {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '?':
			return string(append(b, s[i:]...))
		case c != '%':
			b = append(b, c)
			continue
		}
		// an escape: "%" and up to two more bytes
		if i+1 == len(s) {
			break
		}
		h, ok := unhex(s[i+1])
		if !ok {
			b = append(b, s[i+1]) // nginx keeps the invalid byte, drops the "%"
			i++
			continue
		}
		if i+2 == len(s) {
			break
		}
		l, ok := unhex(s[i+2])
		i += 2
		if !ok {
			continue // nginx drops all three bytes
		}
		switch d := h<<4 | l; {
		case d == '?':
			return string(append(append(b, '?'), s[i+1:]...))
		case d > '%' && d < 0x7f:
			b = append(b, d)
		default:
			b = append(b, s[i-2:i+1]...)
		}
	}
	return string(b)
}
