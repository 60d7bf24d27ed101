package http1

import (
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"unsafe"
)

// Head is a parsed request head: the request line and the header lines, as
// nginx's ngx_http_parse_request_line and ngx_http_parse_header_line read
// them.
type Head struct {
	Method string
	// URI is the request target as sent, from its first "/" (for an
	// absolute URI, the part after the host; "/" when it has none).
	URI string
	// Host is the host of an absolute URI ("" otherwise).
	Host         string
	Major, Minor int
	Header       http.Header
	// Raw is the request line and header lines as received, from the
	// request line (leading empty lines skipped) to the empty line. It
	// must not be changed: the header values share its bytes.
	Raw []byte
	// Notes are info-level error-log messages about the head that did not
	// refuse it (header lines ignored for invalid names).
	Notes []string
	// Pipelined: the head was already buffered when the previous
	// request on the connection ended (nginx's r->pipeline, $pipe)
	Pipelined bool

	has keyInfo     // the known keys (keyInfo's own bits) Header holds
	x   *reqObjects // the objects allocated with the head (nil: none)
}

// values returns Header[key] for the known key that bit notes (nil, with
// no lookup, when the head has none).
func (h *Head) values(bit keyInfo, key string) []string {
	if h.has&bit == 0 {
		return nil
	}
	return h.Header[key]
}

// Pipelined reports whether r came pipelined: sent before the answer to
// the previous request on its connection ended ($pipe).
func Pipelined(r *http.Request) bool {
	h := headOf(r)
	return h != nil && h.Pipelined
}

// Notes returns what the layer found worth an info line in the error log
// about r's head ("client sent invalid header line: ...").
func Notes(r *http.Request) []string {
	if h := headOf(r); h != nil {
		return h.Notes
	}
	return nil
}

// Proto is "HTTP/major.minor", or "" for HTTP/0.9.
func (h *Head) Proto() string {
	switch {
	case h.Major == 0:
		return ""
	case h.Major == 1 && h.Minor == 1:
		return "HTTP/1.1"
	case h.Major == 1 && h.Minor == 0:
		return "HTTP/1.0"
	}
	return "HTTP/" + strconv.Itoa(h.Major) + "." + strconv.Itoa(h.Minor)
}

// Error is a request nginx refuses while reading it: the status it answers
// and the words of its info-level error-log line.
type Error struct {
	Status int
	Msg    string
	// Line: the request line was not read yet ("while reading client
	// request line"), else the headers.
	Line bool
}

func (e *Error) Error() string { return e.Msg }

// Statuses nginx uses inside its request parser: 494 is "400 Request Header
// Or Cookie Too Large", 497 "400 The plain HTTP request was sent to HTTPS
// port", 408 closes without a reply.
const (
	StatusHeaderTooLarge = 494
	StatusToHTTPS        = 497
)

func lineErr(status int, msg string) *Error   { return &Error{Status: status, Msg: msg, Line: true} }
func headerErr(status int, msg string) *Error { return &Error{Status: status, Msg: msg} }

var errInvalidMethod = lineErr(400, "client sent invalid method")
var errInvalidRequest = lineErr(400, "client sent invalid request")
var errVersion = lineErr(505, "client sent unsupported HTTP version")
var errInvalid09 = lineErr(400, "client sent invalid method in HTTP/0.9 request")

// sharedString is b as a string sharing its bytes: b must not change.
func sharedString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// method is the method m names: a constant for the common ones, else a
// string sharing m's bytes.
func method(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	}
	return sharedString(m)
}

// parseRequestLine parses line (without its line end) into h. The strings
// of h share line's bytes, which must not change afterwards.
func parseRequestLine(line []byte, h *Head) *Error {
	i := 0
	for i < len(line) && line[i] != ' ' {
		c := line[i]
		if (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return errInvalidMethod
		}
		i++
	}
	if i == 0 || i == len(line) {
		return errInvalidMethod
	}
	h.Method = method(line[:i])
	for i < len(line) && line[i] == ' ' {
		i++
	}
	start := i
	for i < len(line) && line[i] != ' ' {
		if c := line[i]; c < 0x20 || c == 0x7f {
			return errInvalidRequest
		}
		i++
	}
	target := line[start:i]
	if len(target) == 0 {
		return errInvalidRequest
	}
	if target[0] != '/' {
		host, uri, ok := splitAbsolute(target)
		if !ok {
			return errInvalidRequest
		}
		h.Host, target = sharedString(host), uri
	}
	h.URI = sharedString(target)
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i == len(line) {
		// HTTP/0.9: GET only
		if h.Method != "GET" {
			return errInvalid09
		}
		return nil
	}
	rest := line[i:]
	if !bytes.HasPrefix(rest, []byte("HTTP/")) {
		return errInvalidRequest
	}
	rest = rest[5:]
	// nginx reads the major version digit by digit: a first digit other
	// than 1-9 is invalid, and a major version above 1 is refused with 505
	// as soon as it is read, whatever follows.
	if len(rest) == 0 || rest[0] < '1' || rest[0] > '9' {
		return errInvalidRequest
	}
	if rest[0] > '1' || len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9' {
		h.Major, h.Minor = 1, 0
		return errVersion
	}
	major := 1
	if len(rest) < 2 || rest[1] != '.' {
		return errInvalidRequest
	}
	rest = rest[2:]
	minor, m := number(rest)
	if m == 0 || minor > 999 {
		return errInvalidRequest
	}
	for _, c := range rest[m:] {
		if c != ' ' {
			return errInvalidRequest
		}
	}
	h.Major, h.Minor = major, minor
	return nil
}

// number reads leading decimal digits (at most 4).
func number(b []byte) (int, int) {
	n, i := 0, 0
	for i < len(b) && i < 4 && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i < len(b) && b[i] >= '0' && b[i] <= '9' {
		return 1000, i
	}
	return n, i
}

// splitAbsolute splits "scheme://host[:port]/path" into the host and the
// path ("/" when there is none).
func splitAbsolute(t []byte) (host, uri []byte, ok bool) {
	i := 0
	for i < len(t) && (t[i] >= 'a' && t[i] <= 'z' || t[i] >= 'A' && t[i] <= 'Z' ||
		i > 0 && (t[i] >= '0' && t[i] <= '9' || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
		i++
	}
	if i == 0 || !bytes.HasPrefix(t[i:], []byte("://")) {
		return nil, nil, false
	}
	t = t[i+3:]
	j := 0
	if j < len(t) && t[j] == '[' {
		// nginx's sw_host_ip_literal: letters, digits, ":", unreserved and
		// sub-delims (an IPvFuture literal)
		for j++; j < len(t) && t[j] != ']'; j++ {
			if c := t[j]; !(c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || strings.IndexByte(":-._~!$&'()*+,;=", c) >= 0) {
				return nil, nil, false
			}
		}
		if j == len(t) {
			return nil, nil, false
		}
		j++
	} else {
		for j < len(t) && (t[j] >= 'a' && t[j] <= 'z' || t[j] >= 'A' && t[j] <= 'Z' || t[j] >= '0' && t[j] <= '9' ||
			t[j] == '.' || t[j] == '-' || t[j] == '_') {
			j++
		}
	}
	if j < len(t) && t[j] == ':' {
		j++
		for j < len(t) && t[j] >= '0' && t[j] <= '9' {
			j++
		}
	}
	if j < len(t) && t[j] != '/' && t[j] != '?' {
		return nil, nil, false
	}
	if j == 0 {
		return nil, nil, false
	}
	host = t[:j]
	if j == len(t) {
		return host, []byte("/"), true
	}
	if t[j] == '?' {
		return host, append([]byte("/"), t[j:]...), true
	}
	return host, t[j:], true
}

// headerLine is the verdict on one header line.
type headerLine int

const (
	lineOK      headerLine = iota
	lineIgnored            // invalid characters in the name: skipped, as ignore_invalid_headers does
	lineBad                // 400
)

// parseHeaderLine splits line (without its line end) into the name's
// canonical key and the value. For a bad line, bad is the offset of the
// byte that made it so. With keepInvalid (ignore_invalid_headers off) a
// name with invalid bytes is kept as it was sent.
func parseHeaderLine(line []byte, underscores, keepInvalid bool) (kk knownKey, value []byte, v headerLine, bad int) {
	colon := bytes.IndexByte(line, ':')
	nameEnd := colon
	if colon < 0 {
		nameEnd = len(line)
	}
	name := line[:nameEnd]
	if len(name) == 0 {
		return knownKey{}, nil, lineBad, 0
	}
	// a common name is valid: its bytes need no look
	kk, common := commonKeys[string(name)]
	ignored := false
	for i := 0; i < len(name) && !common; i++ {
		switch nameByte[name[i]] {
		case nameUnderscore:
			ignored = ignored || !underscores
		case nameBad:
			return knownKey{}, nil, lineBad, i
		case nameIgnored:
			ignored = true
		}
	}
	if colon >= 0 {
		value = line[colon+1:]
	}
	if i := bytes.IndexByte(value, 0); i >= 0 {
		return knownKey{}, nil, lineBad, colon + 1 + i
	}
	// spaces only: nginx keeps tabs in the value
	for len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	for len(value) > 0 && value[len(value)-1] == ' ' {
		value = value[:len(value)-1]
	}
	if ignored && !keepInvalid {
		return knownKey{}, value, lineIgnored, 0
	}
	if !common {
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		kk = knownKey{key, keyInfos[key]}
	}
	return kk, value, lineOK, 0
}

// nameByte sorts the bytes of a header name: letters, digits and "-" are
// valid (0), "_" depends on underscores_in_headers, controls and space
// make the line bad, the others make it ignored.
var nameByte = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		case c == '_':
			t[c] = nameUnderscore
		case c <= 0x20 || c == 0x7f:
			t[c] = nameBad
		default:
			t[c] = nameIgnored
		}
	}
	return t
}()

const (
	nameUnderscore = 1 + iota
	nameBad
	nameIgnored
)

// keyInfo is what the parser knows of a header key: whether nginx 1.22
// takes it once (ngx_http_process_unique_header_line, and Host's handler:
// a second line is a 400, checked against nginx header by header), and
// for the headers the layer reads, a bit of its own: a Head notes which
// of them it holds (Head.has), so that a request without them looks none
// up.
type keyInfo uint16

const (
	keyUnique keyInfo = 1 << iota
	keyHost
	keyContentLength
	keyTransferEncoding
	keyExpect
	keyConnection
)

// keyInfos are the keys the parser knows something of, by canonical key.
var keyInfos = map[string]keyInfo{
	"Host": keyUnique | keyHost, "Content-Length": keyUnique | keyContentLength,
	"Transfer-Encoding": keyUnique | keyTransferEncoding, "Expect": keyUnique | keyExpect,
	"Connection":    keyConnection,
	"Authorization": keyUnique, "If-Modified-Since": keyUnique, "If-Unmodified-Since": keyUnique,
	"If-Match": keyUnique, "If-None-Match": keyUnique, "If-Range": keyUnique, "Content-Range": keyUnique,
}

// checkLine applies the checks nginx runs as each header line of a unique
// header (keyUnique) is read (its per-header handlers): Host valid, the
// header single. raw is the head so far, fields the lines before f.
func checkLine(raw []byte, fields []field, f field) *Error {
	for _, prev := range fields {
		if prev.key != f.key {
			continue
		}
		what := "duplicate header line"
		if f.key == "Host" {
			what = "duplicate host header"
		}
		return headerErr(400, fmt.Sprintf(`client sent %s: "%s: %s", previous value: "%s: %s"`, what,
			raw[f.name:f.name+len(f.key)], raw[f.start:f.end], raw[prev.name:prev.name+len(prev.key)], raw[prev.start:prev.end]))
	}
	if f.key == "Host" {
		if _, ok := hostLen(raw[f.start:f.end]); !ok {
			return headerErr(400, "client sent invalid host header")
		}
	}
	return nil
}

// checkHeaders applies nginx's checks on the whole head (ngx_http_process_
// request_header and the per-header handlers).
func checkHeaders(h *Head) *Error {
	if h.has&keyHost == 0 && h.Major == 1 && h.Minor >= 1 && h.Host == "" {
		return headerErr(400, "client sent HTTP/1.1 request without \"Host\" header")
	}
	if h.Host != "" {
		if _, ok := hostLen(h.Host); !ok {
			return headerErr(400, "client sent invalid host in request line")
		}
	}
	if vs := h.values(keyContentLength, "Content-Length"); len(vs) > 0 {
		if _, ok := parseLength(vs[0]); !ok {
			return headerErr(400, "client sent invalid \"Content-Length\" header")
		}
	}
	if vs := h.values(keyTransferEncoding, "Transfer-Encoding"); len(vs) > 0 {
		if h.Major == 1 && h.Minor == 0 {
			return headerErr(400, "client sent HTTP/1.0 request with \"Transfer-Encoding\" header")
		}
		if !strings.EqualFold(vs[len(vs)-1], "chunked") || len(vs) > 1 {
			return headerErr(501, "client sent unknown \"Transfer-Encoding\": \""+vs[len(vs)-1]+"\"")
		}
		if h.has&keyContentLength != 0 {
			return headerErr(400, "client sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time")
		}
	}
	if h.Method == "TRACE" {
		return headerErr(405, "client sent TRACE method")
	}
	return nil
}

// parseLength reads a Content-Length value: decimal digits only.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// ValidHost checks a Host value as nginx's ngx_http_validate_host does and
// returns the host for server selection: lowercased, without port and
// trailing dot.
func ValidHost(h string) (string, bool) {
	n, ok := hostLen(h)
	if !ok {
		return "", false
	}
	return strings.ToLower(h[:n]), true
}

// hostLen checks a Host value as ngx_http_validate_host does and returns
// the length of its host: without port and trailing dot.
func hostLen[T string | []byte](h T) (int, bool) {
	dot := -2
	hostLen := len(h)
	literal, rest := false, false
	for i := 0; i < len(h); i++ {
		c := h[i]
		if plainHostByte[c] {
			continue
		}
		switch c {
		case '.':
			if dot == i-1 {
				return 0, false
			}
			dot = i
		case ':':
			if !rest && !literal {
				hostLen, rest = i, true
			}
		case '[':
			if i == 0 {
				literal = true
			}
		case ']':
			if literal && !rest {
				hostLen, rest = i+1, true
				literal = false
			}
		default:
			if c == '/' || c == '\\' || c <= 0x20 || c == 0x7f {
				return 0, false
			}
		}
	}
	if dot == hostLen-1 {
		hostLen--
	}
	if hostLen <= 0 {
		return 0, false
	}
	return hostLen, true
}

// plainHostByte: a byte of a Host value that hostLen lets pass without a
// second look (letters, digits, "-" and "_").
var plainHostByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	return t
}()

// knownKey is a canonical key and what the parser knows of it.
type knownKey struct {
	key  string
	info keyInfo
}

// commonKeys are the canonical keys of common header names, by the
// spellings clients send, so that these cost no allocation and no second
// lookup.
var commonKeys = map[string]knownKey{}

func init() {
	for _, k := range []string{"Host", "Connection", "Upgrade", "User-Agent", "Accept", "Accept-Encoding",
		"Accept-Language", "Cache-Control", "Pragma", "Origin", "Cookie", "Referer", "Content-Length",
		"Content-Type", "Transfer-Encoding", "Expect", "Authorization", "If-Modified-Since", "If-None-Match",
		"Range", "If-Range", "X-Forwarded-For", "X-Real-Ip", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Keep-Alive", "Dnt", "Te", "Priority",
		"Upgrade-Insecure-Requests", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User"} {
		kk := knownKey{k, keyInfos[k]}
		commonKeys[k] = kk
		commonKeys[strings.ToLower(k)] = kk
	}
	for _, k := range []string{"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol",
		"Sec-WebSocket-Extensions", "X-Real-IP"} {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		commonKeys[k] = knownKey{ck, keyInfos[ck]}
	}
}

// earlyVerdict judges the start of a request line before its end arrived,
// as nginx's byte-by-byte parser does: a byte that cannot start or continue
// a method is refused at once.
func earlyVerdict(prefix []byte) *Error {
	i := 0
	for i < len(prefix) && (prefix[i] == '\r' || prefix[i] == '\n') {
		i++
	}
	for ; i < len(prefix) && prefix[i] != ' '; i++ {
		if c := prefix[i]; (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return errInvalidMethod
		}
	}
	return nil
}

// invalidLine is nginx's error for a bad header line: the line up to the
// byte at bad, that byte in hex, and "...".
func invalidLine(line []byte, bad int) *Error {
	return headerErr(400, fmt.Sprintf(`client sent invalid header line: "%s\x%02x..."`, line[:bad], line[bad]))
}
