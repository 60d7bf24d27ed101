package http1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"unsafe"
)

// readHead reads one request head from br. started reports whether any
// byte of the request arrived (a timeout then is worth a 408 log line).
// The head and the request's other objects are x's (nil: new ones), a
// request's that was answered.
func readHead(br *bufio.Reader, p *Params, underscores bool, x *reqObjects) (h *Head, started bool, err error) {
	if x == nil {
		x = &reqObjects{}
	} else {
		x.reset()
	}
	h, started, err = parseHead(br, p, underscores, x)
	if h.Header == nil { // a head refused before its fields were read
		h.Header = http.Header{}
	}
	return h, started, err
}

// parseHead is readHead's reading, into x.
func parseHead(br *bufio.Reader, p *Params, underscores bool, x *reqObjects) (h *Head, started bool, err error) {
	h = &x.head
	h.x = x
	// leading empty lines are skipped, as nginx does
	var line []byte
	for {
		if e := waitLine(br); e != nil {
			h.Major, h.Minor = 1, 0
			return h, true, e
		}
		line, err = readLine(br, p.LargeBufferSize)
		if err == errTooLong {
			h.Major, h.Minor = 1, 0
			return h, true, lineErr(414, "client sent too long URI")
		}
		if err != nil {
			if len(line) > 0 {
				return h, true, err
			}
			return h, false, err
		}
		if len(trimEOL(line)) > 0 {
			break
		}
	}
	max := p.LargeBufferSize * p.LargeBuffers
	raw := make([]byte, 0, len(line)+br.Buffered())
	raw = append(raw, line...)
	// parsed from raw, whose bytes the strings of the head share
	rl := trimEOL(raw)
	if bytes.IndexByte(rl, '\r') >= 0 {
		h.Major, h.Minor = 1, 0
		return h, true, errInvalidRequest
	}
	if e := parseRequestLine(rl, h); e != nil {
		h.Raw = raw
		if h.Major == 0 && e != errInvalid09 {
			// the reply to a bad request line has headers
			h.Major, h.Minor = 1, 0
		}
		return h, true, e
	}
	if h.Major == 0 {
		h.Raw = raw
		return h, true, nil
	}
	fields := make([]field, 0, 16)
	rules := LineRules{MaxHeaders: p.MaxHeaders, Underscores: underscores, KeepInvalidHeaders: p.KeepInvalidHeaders,
		LargeBufferSize: p.LargeBufferSize, LargeBuffers: p.LargeBuffers}
	if p.LineRulesFor != nil && h.Host != "" {
		if host, ok := ValidHost(h.Host); ok {
			rules = p.LineRulesFor(host)
			max = rules.LargeBufferSize * rules.LargeBuffers
		}
	}
	for {
		if end, _ := br.Peek(min(2, br.Buffered())); len(end) == 2 && end[0] == '\r' && end[1] != '\n' {
			// a line starting with CR can only be the end of the head
			h.Raw = raw
			return h, true, invalidLine(end, 0)
		}
		line, err = readLine(br, rules.LargeBufferSize)
		if err == errTooLong {
			h.Raw = raw
			return h, true, headerErr(StatusHeaderTooLarge, "client sent too long header line")
		}
		if err != nil {
			h.Raw = raw
			return h, true, err
		}
		raw = append(raw, line...)
		if len(raw) > max {
			h.Raw = raw
			return h, true, headerErr(StatusHeaderTooLarge, "client sent too large request")
		}
		l := trimByte(line, '\n')
		if len(l) == 0 || l[0] == '\r' {
			if len(l) > 1 {
				// the empty line ending the head is LF or CRLF only
				h.Raw = raw
				return h, true, invalidLine(l, 0)
			}
			break
		}
		// a header line may end with several CRs before its LF
		for len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if i := bytes.IndexByte(l, '\r'); i >= 0 {
			h.Raw = raw
			return h, true, invalidLine(l, i)
		}
		kk, value, v, bad := parseHeaderLine(l, rules.Underscores, rules.KeepInvalidHeaders)
		switch v {
		case lineBad:
			h.Raw = raw
			return h, true, invalidLine(l, bad)
		case lineIgnored:
			h.Notes = append(h.Notes, `client sent invalid header line: "`+string(l)+`"`)
			continue
		}
		if len(fields) >= rules.MaxHeaders {
			h.Raw = raw
			return h, true, headerErr(StatusHeaderTooLarge, "client sent too many header lines")
		}
		f := field{key: kk.key, info: kk.info, name: len(raw) - len(line), start: len(raw) - len(line) + valueOffset(l, value)}
		f.end = f.start + len(value)
		if f.info&keyUnique != 0 {
			if e := checkLine(raw, fields, f); e != nil {
				h.Raw = raw
				return h, true, e
			}
		}
		fields = append(fields, f)
		h.has |= f.info &^ keyUnique
		if f.info&keyHost != 0 && p.LineRulesFor != nil && h.Host == "" {
			// the Host line chose the server (a request line's host
			// has chosen it already)
			if host, ok := ValidHost(string(raw[f.start:f.end])); ok {
				rules = p.LineRulesFor(host)
				max = rules.LargeBufferSize * rules.LargeBuffers
			}
		}
	}
	// one string holds every value, one slice every list of values; the
	// string shares raw's bytes, which nothing changes after this
	str := unsafe.String(unsafe.SliceData(raw), len(raw))
	if h.Header = x.reqHeader; h.Header == nil {
		h.Header = make(http.Header, len(fields))
	}
	vals := x.vals[:0]
	if cap(vals) < len(fields) {
		vals = make([]string, len(fields))
	}
	vals = vals[:len(fields)]
	x.vals = vals
	for i, f := range fields {
		vals[i] = str[f.start:f.end]
		h.Header[f.key] = vals[i : i+1 : i+1]
	}
	if len(h.Header) < len(fields) {
		// a key came more than once: its values go in one list, in order
		clear(h.Header)
		for i, f := range fields {
			if vs, ok := h.Header[f.key]; ok {
				h.Header[f.key] = append(vs, vals[i])
			} else {
				h.Header[f.key] = vals[i : i+1 : i+1]
			}
		}
	}
	h.Raw = raw
	if e := checkHeaders(h); e != nil {
		return h, true, e
	}
	return h, true, nil
}

// field is a header line read: its canonical key and what the parser
// knows of it, and offsets in the raw head of its name and its value.
type field struct {
	key        string
	info       keyInfo
	name       int
	start, end int
}

// valueOffset is where value (a subslice of line) starts in line.
func valueOffset(line, value []byte) int {
	if len(value) == 0 {
		return len(line)
	}
	return cap(line) - cap(value)
}

// errTooLong: a line longer than a large header buffer.
var errTooLong = errors.New("http1: line too long")

// readLine reads one line of at most limit bytes. The line is br's own
// buffer when it fits there, else a copy.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		if len(line) > limit {
			return nil, errTooLong
		}
		return line, err
	}
	buf := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		if len(buf) > limit {
			return nil, errTooLong
		}
		line, err = br.ReadSlice('\n')
		buf = append(buf, line...)
	}
	if len(buf) > limit {
		return nil, errTooLong
	}
	return buf, err
}

// waitLine waits until br holds a whole line (or is full), refusing at
// once a request line that cannot be valid, as nginx does before the line
// ends.
func waitLine(br *bufio.Reader) *Error {
	for {
		buf, _ := br.Peek(br.Buffered())
		if bytes.IndexByte(buf, '\n') >= 0 {
			return nil
		}
		if e := earlyVerdict(buf); e != nil {
			return e
		}
		if len(buf) == br.Size() {
			return nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil // ReadSlice reports it
		}
	}
}

// trimEOL drops a line's LF and the CR before it.
func trimEOL(line []byte) []byte {
	return trimByte(trimByte(line, '\n'), '\r')
}

// trimByte drops c from the end of b.
func trimByte(b []byte, c byte) []byte {
	if n := len(b); n > 0 && b[n-1] == c {
		return b[:n-1]
	}
	return b
}
