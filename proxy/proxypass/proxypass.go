// Package proxypass holds the wire side of proxy_pass that does not need a
// request: the request nginx's proxy module writes to a backend, its
// sending that waits for the answer without a failed read (Sender), and
// the reading of the backend's response header within proxy_buffer_size,
// with the errors nginx logs for a bad one.
package proxypass

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// Field is one header line: the name as written, and its value.
type Field struct {
	Name, Value string
	// Canon: Name is its own canonical key (letters, digits and dashes,
	// each letter upper case after a dash or at the start, else lower
	// case), as the backend's answer usually spells it; parseField notes
	// it, so that its caller need not work the key out again.
	Canon bool
}

// Key is f's name as a canonical key (textproto.CanonicalMIMEHeaderKey).
func (f *Field) Key() string {
	if f.Canon {
		return f.Name
	}
	return textproto.CanonicalMIMEHeaderKey(f.Name)
}

// WriteRequest appends the request head nginx sends: the request line,
// the fields in order, and the empty line.
func WriteRequest(dst []byte, method, uri, version string, fields []Field) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/"...)
	dst = append(dst, version...)
	dst = append(dst, "\r\n"...)
	for _, f := range fields {
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// Errors reading a response header, in nginx's words (the caller adds
// "while reading response header from upstream").
var (
	ErrTooBig        = errors.New("upstream sent too big header")
	ErrNoValidHeader = errors.New("upstream sent no valid HTTP/1.0 header")
	ErrInvalidHeader = errors.New("upstream sent invalid header")
	ErrClosed        = errors.New("upstream prematurely closed connection")
	ErrBadLength     = errors.New(`upstream sent invalid "Content-Length" header`)
	ErrBadChunked    = errors.New(`upstream sent unknown "Transfer-Encoding"`)
	ErrDuplicateLen  = errors.New(`upstream sent duplicate header line`)
)

// ErrStale is Sender.Send's for a pooled connection the peer closed or
// wrote to while it was idle: nothing was sent, and nginx, which would
// have closed it then, logs nothing.
var ErrStale = errors.New("idle connection closed by the peer")

// Response is a parsed response head.
type Response struct {
	Status int
	Proto  string  // "HTTP/1.0", "HTTP/1.1"
	Fields []Field // in order, names as received
	// ContentLength is -1 when the response has none.
	ContentLength int64
	Chunked       bool
	// Rest is what was read past the header: the start of the body.
	Rest []byte
	// HeadLen is the head's length as received, to its empty line.
	HeadLen int
	// HTTP09: the backend's answer does not start with "HTTP/": nginx
	// logs ErrNoValidHeader and relays it as an HTTP/0.9 response (Rest
	// holds what was read), as ngx_http_proxy_process_status_line does.
	HTTP09 bool
	// XAccel: a field's name starts with "X-Accel-" (in any case), so
	// that Get of such a name may find something.
	XAccel bool
	// Close: a Connection field says "close" (in any case).
	Close bool

	few [8]Field // Fields' first array
}

// Header returns the fields as an http.Header with canonical keys. The
// values share one backing array: a key's first value is a full slice of
// it, so an append to it (a repeated key) moves that key's values out.
func (r *Response) Header() http.Header {
	h := make(http.Header, len(r.Fields))
	vals := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		k := f.Key()
		if v, ok := h[k]; ok {
			h[k] = append(v, f.Value)
			continue
		}
		vals[i] = f.Value
		h[k] = vals[i : i+1 : i+1]
	}
	return h
}

// Get returns the first value of the field key (canonical), "" if none:
// Header().Get(key) without making the map.
func (r *Response) Get(key string) string {
	for _, f := range r.Fields {
		if asciiEqualFold(f.Name, key) {
			return f.Value
		}
	}
	return ""
}

// asciiEqualFold reports whether a and b are equal but for the case of
// ASCII letters (a name that differs from a canonical key only so has it as
// its canonical form).
// xAccel starts the names of nginx's X-Accel-* fields.
const xAccel = "X-Accel-"

// containsFold reports whether s holds sub (lower case ASCII) in any
// case: strings.Contains(strings.ToLower(s), sub) without the copy (no
// other letter lowers to an ASCII one of sub's).
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if asciiEqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ReadResponse reads a response head from rd into a buffer of limit bytes
// (proxy_buffer_size): a head that does not fit is ErrTooBig. A read error
// other than io.EOF is returned as is.
func ReadResponse(rd io.Reader, limit int) (*Response, error) {
	return ReadResponseInto(rd, make([]byte, limit))
}

// ReadResponseInto is ReadResponse into buf, whose length is the limit:
// the response's Rest is part of buf, which the caller may reuse once it
// is done with Rest (the fields are copies).
func ReadResponseInto(rd io.Reader, buf []byte) (*Response, error) {
	res := new(Response)
	if err := ReadResponseTo(res, rd, buf); err != nil {
		return nil, err
	}
	return res, nil
}

// ReadResponseTo is ReadResponseInto into res, which it overwrites (and
// leaves undefined on error).
func ReadResponseTo(res *Response, rd io.Reader, buf []byte) error {
	return ReadResponseAfter(res, rd, buf, 0)
}

// ReadResponseAfter is ReadResponseTo when buf[:n] already holds the
// response's first bytes (Sender.Exchange read them).
func ReadResponseAfter(res *Response, rd io.Reader, buf []byte, n int) error {
	for {
		if !statusLineOK(buf[:n]) {
			*res = Response{Status: http.StatusOK, HTTP09: true, ContentLength: -1, Rest: buf[:n]}
			return nil
		}
		if end := headEnd(buf[:n]); end >= 0 {
			if err := parseHead(res, buf[:end]); err != nil {
				return err
			}
			res.Rest, res.HeadLen = buf[end:n], end
			return nil
		}
		if n == len(buf) {
			return ErrTooBig
		}
		m, err := rd.Read(buf[n:])
		n += m
		if err != nil {
			if m > 0 && headEnd(buf[:n]) >= 0 {
				continue
			}
			if m > 0 && !statusLineOK(buf[:n]) {
				continue
			}
			if errors.Is(err, io.EOF) {
				return ErrClosed
			}
			return err
		}
	}
}

// headEnd returns the offset just past the empty line ending the head, or -1.
func headEnd(b []byte) int {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n') // from line end to line end
		if j < 0 {
			return -1
		}
		i += j
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
}

// statusLineOK reports whether b starts like a status line, as far as it goes.
func statusLineOK(b []byte) bool {
	const prefix = "HTTP/"
	if len(b) < len(prefix) {
		return strings.HasPrefix(prefix, string(b))
	}
	return bytes.HasPrefix(b, []byte(prefix))
}

// parseHead parses head into res. The fields' names and values are parts
// of one string made of head; a line is looked at in one pass.
func parseHead(res *Response, head []byte) error {
	end := len(head)
	for end > 0 && (head[end-1] == '\r' || head[end-1] == '\n') {
		end--
	}
	text := string(head[:end])
	status, text, more := strings.Cut(text, "\n")
	*res = Response{ContentLength: -1}
	status = strings.TrimSuffix(status, "\r")
	proto, rest, ok := strings.Cut(status, " ")
	if !ok || !validProto(proto) || len(rest) < 3 {
		return ErrNoValidHeader
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || code > 999 || (len(rest) > 3 && rest[3] != ' ') {
		return ErrNoValidHeader
	}
	res.Status, res.Proto = code, proto
	if more {
		if n := strings.Count(text, "\n") + 1; n <= len(res.few) {
			res.Fields = res.few[:0]
		} else {
			res.Fields = make([]Field, 0, n)
		}
	}
	for more {
		var l string
		l, text, more = strings.Cut(text, "\n")
		f, ok := parseField(l)
		if !ok {
			return ErrInvalidHeader
		}
		switch {
		case len(f.Name) == len("Content-Length") && strings.EqualFold(f.Name, "Content-Length"):
			if res.ContentLength >= 0 {
				return ErrDuplicateLen
			}
			n, err := strconv.ParseInt(f.Value, 10, 64)
			if err != nil || n < 0 || f.Value[0] == '+' {
				return ErrBadLength
			}
			res.ContentLength = n
		case len(f.Name) == len("Transfer-Encoding") && strings.EqualFold(f.Name, "Transfer-Encoding"):
			if !strings.EqualFold(f.Value, "chunked") {
				return ErrBadChunked
			}
			res.Chunked = true
		case len(f.Name) == len("Connection") && asciiEqualFold(f.Name, "Connection"):
			res.Close = res.Close || containsFold(f.Value, "close")
		case len(f.Name) > len(xAccel) && asciiEqualFold(f.Name[:len(xAccel)], xAccel):
			res.XAccel = true
		}
		res.Fields = append(res.Fields, f)
	}
	if res.Chunked {
		res.ContentLength = -1 // nginx ignores the length of a chunked response
	}
	return nil
}

// parseField parses one header line, its LF gone: nginx takes the CRs
// before the LF; the name, before the first colon, is not empty and holds
// no space, tab, CR or NUL; the value holds no CR or NUL (nginx's "invalid
// header": such a byte would reach the client as a line break for lenient
// parsers) and loses its spaces and tabs at both ends.
func parseField(l string) (Field, bool) {
	for len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	colon := -1
	canon, want := true, nameUpper // want: the classes a byte may have here in a canonical name
	for i := 0; i < len(l); i++ {
		k := nameClass[l[i]]
		if k&(nameColon|nameBad) != 0 {
			if k == nameBad {
				return Field{}, false
			}
			colon = i
			break
		}
		canon = canon && k&want != 0
		want = nameLower
		if k == nameDash {
			want = nameUpper
		}
	}
	if colon <= 0 {
		return Field{}, false
	}
	v := l[colon+1:]
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == 0 {
			return Field{}, false
		}
	}
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return Field{Name: l[:colon], Value: v, Canon: canon}, true
}

// The classes of a field name's bytes (nameClass): a canonical name's
// letters are upper case first and after a dash (nameUpper is the set of
// classes allowed there), lower case elsewhere (nameLower).
const (
	nameBad   uint8 = 1 << iota // space, tab, CR, NUL: not in a name
	nameColon                   // the name's end
	nameUp                      // A-Z
	nameLow                     // a-z
	nameDigit                   // 0-9
	nameDash                    // -

	nameUpper = nameUp | nameDigit | nameDash
	nameLower = nameLow | nameDigit | nameDash
)

var nameClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\r\x00") {
		t[c] = nameBad
	}
	t[':'], t['-'] = nameColon, nameDash
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = nameUp, nameLow
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = nameDigit
	}
	return t
}()

// validProto accepts HTTP/<major>.<minor>.
func validProto(p string) bool {
	v, ok := strings.CutPrefix(p, "HTTP/")
	if !ok {
		return false
	}
	major, minor, ok := strings.Cut(v, ".")
	return ok && digits(major) && digits(minor)
}

func digits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ResponseHopByHop reports whether key (canonical) is a response header
// nginx's upstream module never passes as it is: it answers for the
// connection and the framing itself (Content-Length: set from the parsed
// length). A switch, not a map: no hashing for each field of each answer.
func ResponseHopByHop(key string) bool {
	switch key {
	case "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Content-Length":
		return true
	}
	return false
}

// DefaultHidden are the backend headers proxy_hide_header hides by
// default (unless proxy_pass_header names them).
var DefaultHidden = []string{"Date", "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect",
	"X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"}
