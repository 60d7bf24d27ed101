package http1

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/tls"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"ngxsockify/proxy/internal/ctxval"
)

type ctxKey int

// ctxConn keys the connection (*conn) in its requests' contexts.
const ctxConn ctxKey = iota

// headOf is the head of r, the request its connection serves (nil for
// requests this package did not read). A connection's requests follow
// each other: one served is done with before the next is read, or ends
// the connection (a hijack).
func headOf(r *http.Request) *Head {
	if c, ok := r.Context().Value(ctxConn).(*conn); ok {
		return c.head
	}
	return nil
}

// RawHeader returns the request line and header lines of r as the client
// sent them (nil for requests this package did not read).
func RawHeader(r *http.Request) []byte {
	if h := headOf(r); h != nil {
		return h.Raw
	}
	return nil
}

// reqObjects are the objects of one request allocated at once, with its
// head (readHead): its body, response writer, URL and http.Request.
type reqObjects struct {
	head Head
	body body
	resp response
	url  url.URL
	req  http.Request
	// kept by reset for the next request, empty: the header maps and the
	// array of the head's values
	reqHeader, respHeader http.Header
	vals                  []string
}

// reset makes x, whose request was answered, ready for another one. The
// header maps and the values' array stay, emptied.
func (x *reqObjects) reset() {
	reqHeader, respHeader, vals := x.head.Header, x.resp.header, x.vals
	*x = reqObjects{}
	clear(reqHeader)
	clear(respHeader)
	clear(vals) // the last head's bytes are not kept alive through them
	x.reqHeader, x.respHeader, x.vals = reqHeader, respHeader, vals[:0]
}

// objects returns the objects allocated with h (new ones for a head
// readHead did not make).
func (h *Head) objects() *reqObjects {
	if h.x == nil {
		h.x = &reqObjects{}
	}
	return h.x
}

func (c *conn) newRequest(h *Head) *http.Request {
	x := h.objects()
	if c.reqCtx == nil {
		c.connReqCtx = ctxval.Value{Context: c.ctx, Key: ctxConn, Val: c}
		c.reqCtx = &c.connReqCtx
		// the context is set once per connection: each request is a
		// copy of this one (WithContext would allocate a request each)
		c.blankReq = new(http.Request).WithContext(c.reqCtx)
	}
	r := &x.req
	*r = *c.blankReq
	r.Method, r.RequestURI = h.Method, h.URI
	r.Proto, r.ProtoMajor, r.ProtoMinor = h.Proto(), h.Major, h.Minor
	r.Header, r.RemoteAddr, r.Body = h.Header, c.remoteAddr(), http.NoBody
	if r.Proto == "" {
		r.Proto = "HTTP/0.9"
	}
	if r.RequestURI == "" {
		r.RequestURI = "/"
	}
	r.URL = &x.url
	if !setPlainURI(r.URL, r.RequestURI) {
		u, err := url.ParseRequestURI(r.RequestURI)
		if err != nil {
			path, q, _ := strings.Cut(r.RequestURI, "?")
			u = &url.URL{Path: path, RawQuery: q}
		}
		r.URL = u
	}
	r.Host = h.Host
	if r.Host == "" {
		r.Host = first(h.values(keyHost, "Host"))
	}
	if tc, ok := c.rwc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		r.TLS = &cs
	}
	b := &x.body
	*b = body{c: c, br: c.br, done: true}
	if len(h.values(keyTransferEncoding, "Transfer-Encoding")) > 0 {
		b.chunked, b.done = true, false
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
	} else if vs := h.values(keyContentLength, "Content-Length"); len(vs) > 0 {
		n, _ := parseLength(vs[0])
		r.ContentLength, b.left, b.done = n, n, n == 0
	}
	if h.Major == 1 && h.Minor >= 1 && strings.EqualFold(first(h.values(keyExpect, "Expect")), "100-continue") {
		b.expect = true
	}
	if !b.done || b.expect {
		// reading even an empty body answers "Expect: 100-continue"
		r.Body = b
	}
	c.body = b
	r.Close = !c.wantsKeepalive(h)
	c.head = h
	return r
}

// setPlainURI sets u to what url.ParseRequestURI makes of uri when uri is
// a path of bytes that need neither unescaping nor escaping, with an
// optional query free of control bytes (u's Path and RawQuery are then
// uri's own parts); it reports false, leaving u alone, for other targets.
func setPlainURI(u *url.URL, uri string) bool {
	if uri == "" || uri[0] != '/' || uri[len(uri)-1] == '?' {
		return false // a lone "?" at the end sets ForceQuery
	}
	path, query, _ := strings.Cut(uri, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte(path[i]) {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

// plainPathByte: net/url leaves c as it is in a path, both ways.
func plainPathByte(c byte) bool { return plainPath[c] }

var plainPath = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-_.~$&+,/:;=@", byte(c)) >= 0
	}
	return t
}()

// remoteAddr is the client's address, as a string made once per connection.
func (c *conn) remoteAddr() string {
	if c.remote == "" {
		c.remote = addrString(c.rwc.RemoteAddr())
	}
	return c.remote
}

// addrString is a.String() in one allocation where a is a TCP address
// without a zone (TCPAddr.String makes the IP's string, then the joined
// one), and nginx's "unix:" (with the client's path, if it bound one) for
// a unix socket's peer, whose unnamed address Go gives as "@".
func addrString(a net.Addr) string {
	if ua, ok := a.(*net.UnixAddr); ok {
		if ua.Name == "@" {
			return "unix:"
		}
		return "unix:" + ua.Name
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta == nil || ta.Zone != "" {
		return a.String()
	}
	var buf [64]byte
	b := buf[:0]
	if ip4 := ta.IP.To4(); ip4 != nil {
		for i, o := range ip4 {
			if i > 0 {
				b = append(b, '.')
			}
			b = strconv.AppendUint(b, uint64(o), 10)
		}
	} else {
		var err error
		if b, err = ta.IP.AppendText(append(b, '[')); err != nil {
			return a.String()
		}
		if bytes.IndexByte(b, ':') < 0 {
			b = b[1:] // no address: no brackets
		} else {
			b = append(b, ']')
		}
	}
	b = append(b, ':')
	return string(strconv.AppendInt(b, int64(ta.Port), 10))
}

// wantsKeepalive: HTTP/1.1 unless "Connection: close", HTTP/1.0 with
// "Connection: keep-alive".
func (c *conn) wantsKeepalive(h *Head) bool {
	connection := h.values(keyConnection, "Connection")
	if h.Major == 1 && h.Minor >= 1 {
		return !containsFold(connection, "close")
	}
	return h.Major == 1 && containsFold(connection, "keep-alive")
}

// first is the first of a header's values, as Header.Get returns it, for
// a canonical key (Get would canonicalize it again).
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// containsFold reports whether one of vs contains token (lower case),
// in any case.
func containsFold(vs []string, token string) bool {
	for _, v := range vs {
		for i := 0; i+len(token) <= len(v); i++ {
			if strings.EqualFold(v[i:i+len(token)], token) {
				return true
			}
		}
	}
	return false
}

// response is the http.ResponseWriter of one request.
type response struct {
	c      *conn
	req    *http.Request
	head   *Head
	body   *body
	header http.Header
	order  []string  // canonical keys in the order Note saw them
	few    [8]string // order's first array
	// listed has bit i set when fixed[i] (not Content-Type) was noted: a
	// handler made it an entry of nginx's header list, written in list
	// order rather than in the header filter's own place
	listed uint8
	// ownVary: the first Vary value is the header filter's own
	// (gzip_vary's), written in its place after Keep-Alive
	ownVary bool

	status      int
	wroteHeader bool
	headOnly    bool  // HEAD, 204, 304: no body is sent
	length      int64 // Content-Length sent, -1 none
	read        int64 // the connection's bytes read, once detached (c nil)
	chunked     bool
	written     int64 // body bytes written
	headSize    int64 // the response head's bytes
	sent        int64 // bytes written to the connection
	keepalive   bool
	discard     bool // write nothing (408, 444 ...)
	finished    bool
	trailer     []byte // header lines after the last chunk (SetTrailer)
	err         error
}

func newResponse(c *conn, r *http.Request, h *Head) *response {
	x := h.objects()
	header := x.respHeader
	if header == nil {
		header = http.Header{}
	}
	w := &x.resp
	*w = response{c: c, req: r, head: h, body: c.body, header: header, length: -1,
		keepalive: !r.Close}
	w.order = w.few[:0]
	return w
}

func (w *response) Header() http.Header { return w.header }

// Params returns the connection's settings, for the handler to change
// for this request and the ones after.
func (w *response) Params() *Params { return &w.c.params }

// Note records that the handler added the header name now: headers go out
// in the order they were noted, as nginx's list keeps them. A name noted
// again keeps its place. Server, Date, Content-Length, Last-Modified and
// Location noted are entries of that list too (a module set them, as
// nginx's r->headers_out fields then point into the list): they go out
// in list order, not in the places nginx's header filter writes its own
// values in (Content-Type has only that place).
func (w *response) Note(name string) {
	key := name
	if !isCanonical(name) {
		key = textproto.CanonicalMIMEHeaderKey(name)
	}
	switch i := fixedIndex(key); {
	case i == fixedType:
		return // always in its own place
	case i >= 0:
		w.listed |= 1 << i
	}
	for _, k := range w.order {
		if k == key {
			return
		}
	}
	w.order = append(w.order, key)
}

// Unnote forgets that name was noted, as a header cleared from nginx's
// list (a later Note puts it last), or one that nginx's header filter
// writes in its own place after all (a relative Location it makes
// absolute).
func (w *response) Unnote(name string) {
	key := name
	if !isCanonical(name) {
		key = textproto.CanonicalMIMEHeaderKey(name)
	}
	if i := fixedIndex(key); i >= 0 {
		w.listed &^= 1 << i
	}
	if i := slices.Index(w.order, key); i >= 0 {
		w.order = slices.Delete(w.order, i, i+1)
	}
}

// OwnVary records that the header's first Vary value is nginx's header
// filter's own (gzip_vary): it goes out in that filter's place, after
// Keep-Alive, and the other values in their place in the list.
func (w *response) OwnVary() { w.ownVary = true }

// BytesSent is the number of bytes written to the connection so far
// ($bytes_sent), and RequestLength the bytes of the request read
// ($request_length).
func (w *response) BytesSent() int64 {
	n := w.sent
	if w.c != nil && w.c.bw != nil {
		n += int64(w.c.bw.Buffered())
	}
	if w.chunked && !w.finished && w.err == nil && w.c != nil && !w.c.hijacked {
		// the last chunk, which finish writes (not after a handler took
		// the connection to close it: a body cut short has none)
		n += 5 + int64(len(w.trailer))
	}
	return n
}

// Detach, for a hijacked request whose handler keeps its writer (a tunnel
// keeps it for its access-log line), drops what the writer and the
// request hold of the connection: the connection object, its buffers and
// its socket (the request's context still leads to the connection: a
// keeper of the request replaces it). BytesSent and RequestLength keep
// answering with their values at the call; nothing else may be called
// after it. The handler calls it
// before it returns, so that no other goroutine reads the writer while
// the connection's goroutine lets go of the connection.
func (w *response) Detach() {
	c := w.c
	if c == nil || !c.hijacked {
		return
	}
	if c.bw != nil {
		w.sent += int64(c.bw.Buffered())
	}
	w.read = c.read
	if b := w.body; b != nil { // the request's Body too
		b.c, b.br = nil, nil
	}
	w.c, w.body = nil, nil
}

// BodyBytesSent is the number of body bytes written ($body_bytes_sent):
// as nginx's, what was sent after the head, so that a chunked body counts
// its chunks' framing and its trailer too.
func (w *response) BodyBytesSent() int64 {
	if w.chunked {
		return max(0, w.BytesSent()-w.headSize)
	}
	return w.written
}

func (w *response) RequestLength() int64 {
	if w.c == nil { // detached
		return w.read
	}
	return w.c.read
}

// ParamsOf, BytesSent and RequestLength reach the layer through a wrapped
// ResponseWriter.
type Wire interface {
	Params() *Params
	Note(name string)
	Unnote(name string)
	OwnVary()
	BytesSent() int64
	BodyBytesSent() int64
	RequestLength() int64
	DiscardBody() error
	// ConnRequests is the number of requests on the connection so far,
	// this one included; ConnStart, when the connection was accepted.
	ConnRequests() int
	ConnStart() time.Time
	// SetTrailer gives the header lines ("Name: value\r\n" each) sent
	// after the last chunk of a chunked body, before the finish.
	SetTrailer(lines []byte)
}

func (w *response) SetTrailer(lines []byte) { w.trailer = lines }

// WriteErr is the error a write to the client met (the client reset the
// connection, a send timeout), nil while none did.
func (w *response) WriteErr() error { return w.err }

// Discarded tells whether the response is dropped unsent: a request
// refused while it was read that nginx closes without a reply (a header
// timeout, a client gone mid-head).
func (w *response) Discarded() bool { return w.discard }

func (w *response) ConnRequests() int    { return w.c.requests }
func (w *response) ConnStart() time.Time { return w.c.start }

// browserDisables applies keepalive_disable: nginx's browser detection
// from the User-Agent.
func browserDisables(p *Params, r *http.Request) bool {
	if !p.KeepaliveDisableSafari && (!p.KeepaliveDisableMSIE6 || r.Method != http.MethodPost) {
		// msie6 (the default) concerns POSTs only: no User-Agent to read
		return false
	}
	ua := first(r.Header["User-Agent"])
	if ua == "" || strings.Contains(ua, "Opera") {
		return false
	}
	if i := strings.Index(ua, "MSIE "); i >= 0 && i+7 < len(ua) {
		return p.KeepaliveDisableMSIE6 && r.Method == http.MethodPost && MSIE6(ua)
	}
	return p.KeepaliveDisableSafari && !strings.Contains(ua, "Gecko/") && !strings.Contains(ua, "Chrome/") &&
		strings.Contains(ua, "Safari/") && strings.Contains(ua, "Mac OS X")
}

// MSIE6 reports whether nginx takes the User-Agent ua for MSIE 4 to 6
// (its msie6 flag, which keepalive_disable and gzip_disable read): "MSIE
// 4." or "MSIE 5.", or "MSIE 6." without "SV1" after it, and no "Opera"
// anywhere.
func MSIE6(ua string) bool {
	i := strings.Index(ua, "MSIE ")
	if i < 0 || i+7 >= len(ua) || ua[i+6] != '.' || strings.Contains(ua, "Opera") {
		return false
	}
	switch ua[i+5] {
	case '4', '5':
		return true
	case '6':
		return !strings.Contains(ua[i+8:], "SV1")
	}
	return false
}

// DiscardBody reads and drops what the client already sent of the body,
// without waiting for more; it returns the body's error (an *Error for a
// malformed one). The rest is discarded after the response.
func (w *response) DiscardBody() error { return w.body.discardBuffered() }

var _ Wire = (*response)(nil)

// fixed are the headers nginx's header filter writes first, in its order;
// rank orders the others it adds itself, relative to the noted ones.
var fixed = [...]string{"Server", "Date", "Content-Type", "Content-Length", "Last-Modified", "Location"}

// fixedType is Content-Type's index in fixed: never an entry of the list.
const fixedType = 2

// fixedIndex is slices.Index(fixed[:], k), as a switch (compiled to a
// search by length and bytes rather than six calls to compare strings).
func fixedIndex(k string) int {
	switch k {
	case "Server":
		return 0
	case "Date":
		return 1
	case "Content-Type":
		return 2
	case "Content-Length":
		return 3
	case "Last-Modified":
		return 4
	case "Location":
		return 5
	}
	return -1
}

var rank = map[string]int{
	// Vary: gzip_vary's, which nginx's header filter writes before the
	// header list (a Vary a handler noted keeps its place)
	"Vary":             0,
	"Www-Authenticate": 1, "Etag": 2, "Expires": 3, "Cache-Control": 4,
	"Accept-Ranges": 1000,
}

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.c.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != 101 {
		// nginx sends no interim responses from handlers
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.discard {
		return
	}
	h := w.header
	now := monoNow()
	if _, ok := h["Date"]; !ok {
		h["Date"] = dateValues(now)
	}
	if code == 204 || code == 304 || w.req.Method == http.MethodHead {
		w.headOnly = true
	}
	if v := first(h["Content-Length"]); v != "" {
		if n, ok := parseLength(v); ok {
			w.length = n
		}
	}
	if strings.EqualFold(first(h["Connection"]), "close") {
		w.keepalive = false
	}
	if p := &w.c.params; w.c.requests >= p.KeepaliveRequests || p.KeepaliveTimeout <= 0 || w.c.s.noKeep.Load() ||
		time.Duration(now-monoOf(w.c.start)) > p.KeepaliveTime || browserDisables(p, w.req) {
		w.keepalive = false
	}
	if w.length < 0 && !w.headOnly && code != 101 {
		if w.head.Major == 1 && w.head.Minor >= 1 && !w.c.params.NoChunked {
			w.chunked = true
		} else {
			w.keepalive = false
		}
	}
	if w.head.Major == 0 {
		// HTTP/0.9: the body alone
		w.chunked = false
		return
	}
	bw := w.c.writer()
	// the head is appended to the writer's free space and written at once
	b := bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 "...)
	b = append(b, StatusLine(code)...)
	b = append(b, "\r\n"...)
	var own [len(fixed)]outField
	var vary outField // gzip_vary's (OwnVary), under the key holding it
	var rest [16]rankedKey
	others := w.sortFields(&own, &vary, rest[:0])
	for i := range own {
		b = appendField(b, own[i].key, own[i].vals)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case code == 101:
		b = append(b, "Connection: upgrade\r\n"...)
	case w.keepalive:
		b = append(b, "Connection: keep-alive\r\n"...)
		if t := w.c.params.KeepaliveHeader; t > 0 {
			b = append(b, "Keep-Alive: timeout="...)
			b = strconv.AppendInt(b, int64(t/time.Second), 10)
			b = append(b, "\r\n"...)
		}
	default:
		b = append(b, "Connection: close\r\n"...)
	}
	if vary.key != "" {
		b = appendField(b, "Vary", vary.vals) // as nginx spells its own
	}
	for _, o := range others {
		vs := w.header[o.key]
		if vary.key != "" && o.key == vary.key {
			vs = vs[1:]
		}
		b = appendField(b, o.key, vs)
	}
	b = append(b, "\r\n"...)
	if len(b) > bw.Available() {
		w.c.writeDeadline() // a head larger than the buffer goes out now
	}
	w.headSize = int64(len(b))
	bw.Write(b)
}

// outField is a header to write: its key as the handler spelled it, and
// its values.
type outField struct {
	key  string
	vals []string
}

// rankedKey is a key of the header left to write after the fixed ones,
// with its place among them.
type rankedKey struct {
	pos int
	key string
}

// sortFields sorts the header's keys for writing, in one pass over it:
// the fixed ones not listed into own, by their place in fixed (under the
// canonical key, or else a spelling of the handler's: ETag, x-a), and the
// others that WriteHeader does not write itself (the framing) appended to
// rest: ranked ones and noted ones in order, then the rest by name (their
// order was not recorded). Under OwnVary, the first Vary value goes into
// vary too (WriteHeader then skips it in rest).
func (w *response) sortFields(own *[len(fixed)]outField, vary *outField, rest []rankedKey) []rankedKey {
	for k, vs := range w.header {
		if i := fixedIndex(k); i >= 0 && w.listed&(1<<i) == 0 {
			own[i] = outField{k, vs}
			continue
		}
		ck := k
		if !isCanonical(k) {
			ck = textproto.CanonicalMIMEHeaderKey(k)
			if i := fixedIndex(ck); i >= 0 && w.listed&(1<<i) == 0 {
				if own[i].key == "" {
					own[i] = outField{k, vs}
				}
				continue
			}
		}
		switch ck {
		case "Connection", "Keep-Alive", "Transfer-Encoding":
			continue
		case "Vary":
			if w.ownVary && len(vs) > 0 && vary.key == "" {
				*vary = outField{k, vs[:1]}
			}
		}
		rest = append(rest, rankedKey{w.place(ck), k})
	}
	if len(rest) > 1 {
		slices.SortFunc(rest, func(a, b rankedKey) int {
			if c := cmp.Compare(a.pos, b.pos); c != 0 {
				return c
			}
			return strings.Compare(a.key, b.key)
		})
	}
	return rest
}

// place orders a header (canonical key ck) among the others: the ones
// nginx adds itself by rank, the noted ones in the order noted, then the
// rest.
func (w *response) place(ck string) int {
	if i := slices.Index(w.order, ck); i >= 0 {
		return 100 + i
	}
	if r, ok := rank[ck]; ok {
		return r
	}
	return 500
}

// isCanonical reports whether k is in canonical form (not respelled by
// the handler: ETag, x-a).
func isCanonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// appendField appends the lines of a header.
func appendField(b []byte, key string, vs []string) []byte {
	for _, v := range vs {
		b = append(b, key...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard || w.headOnly || w.status == 101 {
		return len(p), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		p = p[:w.length-w.written]
	}
	if len(p) == 0 {
		return 0, nil
	}
	bw := w.c.writer()
	if len(p)+chunkFraming > bw.Available() {
		// this may reach the connection (else finish's flush sets it)
		w.c.writeDeadline()
	}
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := w.write(p)
	if w.chunked && err == nil {
		_, err = w.write([]byte("\r\n"))
	}
	w.written += int64(n)
	if err != nil {
		w.err = err
		w.keepalive = false
	}
	return n, err
}

// chunkFraming is more than a chunk adds to its data: its size line (at
// most 16 hex digits and CRLF) and the CRLF after.
const chunkFraming = 32

// write writes through the buffer, counting what reaches the connection.
func (w *response) write(p []byte) (int, error) {
	bw := w.c.writer()
	before := bw.Buffered()
	if len(p) > bw.Available() && bw.Buffered() > 0 {
		before = bw.Buffered()
		if err := bw.Flush(); err != nil {
			return 0, err
		}
		w.sent += int64(before)
	}
	if len(p) >= bw.Size() {
		n, err := w.c.rwc.Write(p)
		w.sent += int64(n)
		return n, err
	}
	return bw.Write(p)
}

// Flush sends what is buffered.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.flush()
}

func (w *response) flush() {
	if w.c.bw == nil || w.err != nil {
		return
	}
	n := w.c.bw.Buffered()
	w.c.writeDeadline()
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
		w.keepalive = false
		return
	}
	w.sent += int64(n)
}

// Finish ends the response now (the last chunk, and the flush) for a
// handler that keeps the request after it: nothing more is written. The
// server's own finish then does nothing.
func (w *response) Finish() { w.finish() }

// finish ends the response: the last chunk, and the flush.
func (w *response) finish() {
	if w.discard || w.finished {
		return
	}
	w.finished = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked && w.err == nil {
		bw := w.c.writer()
		bw.WriteString("0\r\n")
		bw.Write(w.trailer)
		bw.WriteString("\r\n")
	}
	if w.length >= 0 && w.written < w.length && !w.headOnly {
		w.keepalive = false
	}
	w.flush()
}

// Hijack hands the connection to the caller (the WebSocket relay).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rwc, br, err := w.HijackReader()
	if err != nil {
		return nil, nil, err
	}
	return rwc, bufio.NewReadWriter(br, bufio.NewWriterSize(rwc, 64)), nil
}

// HijackReader is Hijack without a buffered writer, for a caller that
// writes to the connection itself (proxy/websockify): it returns the
// connection and the reader holding what the client sent after the
// request head.
func (w *response) HijackReader() (net.Conn, *bufio.Reader, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader {
		// what was written goes out first, as net/http's Hijack does (a
		// response cut short: nginx closing after an error in a filter)
		w.flush()
	}
	c.hijacked = true
	c.rwc.SetDeadline(time.Time{})
	c.rd, c.wd = lazyDeadline{set: true}, lazyDeadline{set: true}
	c.release()
	// the connection is the caller's now: Shutdown neither waits for it
	// nor closes it
	c.s.setState(c, http.StateHijacked)
	c.s.forget(c)
	return c.rwc, c.br, nil
}

// DropUnsent discards what the response holds in its buffer when none of
// it has reached the connection yet, and reports whether it did: nginx
// holds a response header until body bytes follow it, so a request ended
// in between (a filter's error) closes without a reply.
func (w *response) DropUnsent() bool {
	c := w.c
	if c == nil || c.hijacked || w.sent != 0 || w.err != nil || c.bw == nil {
		return false
	}
	c.bw.Reset(c.rwc)
	return true
}

var _ http.Hijacker = (*response)(nil)
var _ http.Flusher = (*response)(nil)
