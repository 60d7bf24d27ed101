package proxy

import (
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
	"ngxsockify/proxy/static"
)

// gzipModule is nginx's gzip filter and gzip_static modules. The filter's
// header filter comes last in the chain (after add_header and
// header_filter_by_lua, as nginx's runs after theirs): a 200, 403 or 404
// response of the gzip_types, not encoded yet, at least gzip_min_length
// long when its length is known, for a client that accepts gzip
// (ngx_http_gzip_ok: Accept-Encoding, gzip_http_version, gzip_proxied,
// gzip_disable) gets "Content-Encoding: gzip", loses its Content-Length
// and Accept-Ranges, and its ETag turns weak. The body is compressed
// after every body filter (Lua's, sub_filter, charset, SSI), as the last
// step before the connection (and limit_rate's pacing); a flush (proxy_buffering
// off, ngx.flush) is a deflate sync flush, so streamed responses stream.
// gzip_vary adds "Vary: Accept-Encoding" wherever compression was
// considered. gzip_static serves file.gz in place of file (content phase,
// before the static handler).
var gzipModule = module{
	name: "gzip",
	register: func(e *engine) {
		e.add(phaseContent, gzipStatic)
		e.addHeaderFilter(gzipHeaderFilter)
	},
}

// gzipReq is a request's gzip state: the verdict of ngx_http_gzip_ok once
// tested (r->gzip_tested, r->gzip_ok), and whether Vary is due
// (r->gzip_vary).
type gzipReq struct {
	tested, ok, vary bool
}

// gzipOK is ngx_http_gzip_ok for the response headers h (the Via case
// reads them), remembered from its first call as nginx does.
func (rq *request) gzipOK(h http.Header) bool {
	if !rq.gzip.tested {
		rq.gzip.tested = true
		rq.gzip.ok = gzipAccepted(rq, h)
	}
	return rq.gzip.ok
}

// gzipAccepted decides whether the client gets a compressed response.
func gzipAccepted(rq *request, h http.Header) bool {
	if rq.subrequest {
		return false
	}
	r, conf := rq.r, rq.conf
	ae := headerFirst(r.Header, "Accept-Encoding")
	if len(ae) < 4 || !strings.HasPrefix(ae, "gzip,") && !acceptsGzip(ae) {
		return false
	}
	if conf.GzipDisableMSIE6 && http1.MSIE6(headerFirst(r.Header, "User-Agent")) {
		return false
	}
	version := r.ProtoMajor*10 + r.ProtoMinor
	if r.ProtoMajor >= 2 {
		version = 20
	}
	if version < conf.GzipHTTPVersion {
		return false
	}
	if _, via := r.Header["Via"]; via && !gzipProxiedOK(r, conf.GzipProxied, h) {
		return false
	}
	if ua, ok := r.Header["User-Agent"]; ok && len(conf.GzipDisable) > 0 {
		for _, re := range conf.GzipDisable {
			if _, matched, err := re.Exec(ua[0]); err != nil || matched {
				return false
			}
		}
	}
	return true
}

// gzipProxiedOK is gzip_proxied's verdict on a request that came through
// a proxy (it has a Via header), from the response headers h.
func gzipProxiedOK(r *http.Request, p uint, h http.Header) bool {
	switch {
	case p&nginxconf.GzipProxiedOff != 0:
		return false
	case p&nginxconf.GzipProxiedAny != 0:
		return true
	case p&nginxconf.GzipProxiedAuth != 0 && len(r.Header["Authorization"]) > 0:
		return true
	}
	if e, ok := h["Expires"]; ok && len(e) > 0 {
		if p&nginxconf.GzipProxiedExpired == 0 {
			return false
		}
		expires, err := http.ParseTime(e[0])
		if err != nil {
			return false
		}
		date := time.Now()
		if d := headerFirst(h, "Date"); d != "" {
			if date, err = http.ParseTime(d); err != nil {
				return false
			}
		}
		return expires.Unix() < date.Unix()
	}
	if cc := h["Cache-Control"]; len(cc) > 0 {
		return p&nginxconf.GzipProxiedNoCache != 0 && headerToken(cc, "no-cache") ||
			p&nginxconf.GzipProxiedNoStore != 0 && headerToken(cc, "no-store") ||
			p&nginxconf.GzipProxiedPrivate != 0 && headerToken(cc, "private")
	}
	if p&nginxconf.GzipProxiedNoLM != 0 && len(h["Last-Modified"]) > 0 {
		return false
	}
	if p&nginxconf.GzipProxiedNoETag != 0 && len(h["Etag"]) > 0 {
		return false
	}
	return true
}

// headerToken is ngx_http_parse_multi_header_lines without a value: some
// comma-separated item of the values is name (without case), maybe
// followed by spaces.
func headerToken(values []string, name string) bool {
	for _, v := range values {
		s := 0
		for s < len(v) {
			if len(v)-s >= len(name) && strings.EqualFold(v[s:s+len(name)], name) {
				e := s + len(name)
				for e < len(v) && v[e] == ' ' {
					e++
				}
				if e == len(v) || v[e] == ',' {
					return true
				}
			}
			for s < len(v) && v[s] != ',' {
				s++
			}
			for s++; s < len(v) && v[s] == ' '; s++ {
			}
		}
	}
	return false
}

// acceptsGzip is ngx_http_gzip_accept_encoding: "gzip" (any case) at the
// start of the value or after "," or " ", then an item end or a ";q="
// that is not zero.
func acceptsGzip(ae string) bool {
	start := 0
	p := -1
	for {
		i := indexFold(ae[start:], "gzip")
		if i < 0 {
			return false
		}
		p = start + i
		if p == 0 || ae[p-1] == ',' || ae[p-1] == ' ' {
			break
		}
		start = p + 4
	}
	p += 4
	for p < len(ae) {
		c := ae[p]
		p++
		switch c {
		case ',':
			return true
		case ';':
			return gzipQuality(ae[p:])
		case ' ':
		default:
			return false
		}
	}
	return true
}

// gzipQuality reads the parameters after "gzip;" as nginx does: a "q"
// (spaces before it allowed), "=", and a quantity above zero.
func gzipQuality(s string) bool {
	p := 0
	for ; p < len(s); p++ {
		switch s[p] {
		case 'q', 'Q':
			p++
			if p+2 > len(s) || s[p] != '=' {
				return false
			}
			return quantity(s[p+1:]) > 0
		case ' ':
		default:
			return false
		}
	}
	return true
}

// quantity is ngx_http_gzip_quantity: "0" or "1", then optionally "." and
// up to three digits (each one adds its value, as nginx's does); 0 for
// anything else or above 1.
func quantity(s string) int {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return 0
	}
	q := int(s[0]-'0') * 100
	if len(s) == 1 {
		return q
	}
	if c := s[1]; c == ',' || c == ' ' {
		return q
	} else if c != '.' {
		return 0
	}
	n := 0
	for _, c := range []byte(s[2:]) {
		if c == ',' || c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return 0
		}
		q += int(c - '0')
		n++
	}
	if q > 100 || n > 3 {
		return 0
	}
	return q
}

// indexFold is strings.Index of an ASCII lower-case needle, without case.
func indexFold(s, needle string) int {
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}

// gzipCandidate is the gzip filter's test of a response before the
// client's: enabled, status, not encoded, length, type.
func gzipCandidate(conf *nginxconf.LocConf, code int, h http.Header) bool {
	if !conf.Gzip || code != http.StatusOK && code != http.StatusForbidden && code != http.StatusNotFound {
		return false
	}
	if headerFirst(h, "Content-Encoding") != "" {
		return false
	}
	if cl := headerFirst(h, "Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < conf.GzipMinLength {
			return false
		}
	}
	return subTypeMatch(conf.GzipTypes, headerFirst(h, "Content-Type"))
}

// gzipHeaderFilter starts compression of a response it applies to, and
// adds Vary where gzip_vary asks for it.
func gzipHeaderFilter(rq *request, code int) int {
	conf := rq.conf
	if conf == nil || rq.w.discard {
		return code
	}
	h := rq.w.Header()
	if gzipCandidate(conf, code, h) {
		rq.gzip.vary = true
		if rq.gzipOK(h) {
			h["Content-Encoding"] = []string{"gzip"}
			rq.w.note("Content-Encoding")
			delete(h, "Content-Length")
			delete(h, "Accept-Ranges")
			weakETag(h)
			rq.w.gz = &gzipOut{level: conf.GzipCompLevel, bufSize: conf.GzipBufSize, rq: rq}
			if _, h2 := rq.wire.(*h2Writer); h2 || rq.wire == nil {
				rq.w.stream = true // no length computed for a short body
			}
		}
	}
	if rq.gzip.vary && conf.GzipVary && !rq.subrequest {
		// nginx's header filter writes it before the other headers
		// (a Vary of its list keeps its place)
		h["Vary"] = append([]string{"Accept-Encoding"}, h["Vary"]...)
		if wr := rq.w.notes(); wr != nil {
			wr.OwnVary()
		}
	}
	return code
}

// gzipWill reports, for the static handler, whether the filter will
// compress a 200 of type ctype and length size here (ranges are then not
// served, as nginx's filter clears r->allow_ranges). gzip_proxied reads
// the response headers: those the file gets (Last-Modified, ETag unless
// etag off) and those expires and add_header will add.
func (rq *request) gzipWill(ctype string, size int64, etag bool) bool {
	h := http.Header{"Content-Type": {ctype}, "Content-Length": {strconv.FormatInt(size, 10)}}
	if !gzipCandidate(rq.conf, http.StatusOK, h) {
		return false
	}
	if rq.gzip.tested {
		return rq.gzip.ok
	}
	if _, via := rq.r.Header["Via"]; via {
		h["Last-Modified"] = []string{"-"}
		if etag {
			h["Etag"] = []string{"-"}
		}
		conf := rq.conf
		if conf.Expires != nil {
			setExpires(h, conf.Expires, rq.v, time.Now())
		}
		for i := range conf.AddHeaders {
			ah := &conf.AddHeaders[i]
			switch ah.Key {
			case "Cache-Control", "Expires", "Last-Modified", "Etag":
			default:
				continue
			}
			addHeader(h, ah.Key, ah.Value.Eval(rq.v), ah.Replace)
		}
	}
	return gzipAccepted(rq, h)
}

// gzipWillHeaders reports, for proxy_force_ranges, whether the filter
// will compress a response of status with the headers h (judged without
// remembering the verdict: add_header has not run yet).
func (rq *request) gzipWillHeaders(status int, h http.Header) bool {
	if !gzipCandidate(rq.conf, status, h) {
		return false
	}
	if rq.gzip.tested {
		return rq.gzip.ok
	}
	return gzipAccepted(rq, h)
}

// gzipOut compresses one response body into the response. Compressed bytes
// collect in buf (gzip_buffers' size) and go out when it fills, on a
// flush and at the end, so the chunks are buffer-sized.
type gzipOut struct {
	rq      *request
	level   int
	bufSize int
	zw      *gzipWriter
	in, out int64
	sent    int // bytes sent during the current call
	err     error
}

// gzipWriter is a pooled compressor with its output buffer.
type gzipWriter struct {
	zw  *gzip.Writer
	buf []byte
	out *gzipOut // where the buffer goes (set while in use)
}

// gzipPools hold compressors by level (1..9): a compressor is large
// (hundreds of KB), so each request borrows one.
var gzipPools [10]sync.Pool

func getGzipWriter(level, bufSize int) *gzipWriter {
	bufSize = min(max(bufSize, 4096), 64<<10)
	if v := gzipPools[level].Get(); v != nil {
		w := v.(*gzipWriter)
		if cap(w.buf) < bufSize {
			w.buf = make([]byte, 0, bufSize)
		}
		w.buf = w.buf[:0]
		w.zw.Reset(w)
		return w
	}
	w := &gzipWriter{buf: make([]byte, 0, bufSize)}
	w.zw, _ = gzip.NewWriterLevel(w, level)
	return w
}

func putGzipWriter(level int, w *gzipWriter) {
	w.out = nil
	gzipPools[level].Put(w)
}

// Write takes compressed bytes from the compressor.
func (w *gzipWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := cap(w.buf) - len(w.buf)
		if room == 0 {
			if err := w.send(); err != nil {
				return 0, err
			}
			continue
		}
		k := min(room, len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// send writes the buffered compressed bytes to the response.
func (w *gzipWriter) send() error {
	if len(w.buf) == 0 {
		return nil
	}
	g := w.out
	n, err := g.rq.w.send(w.buf)
	w.buf = w.buf[:0]
	g.out += int64(n)
	g.sent += n
	if err != nil {
		g.err = err
	}
	return err
}

// write compresses p; it returns the compressed bytes sent meanwhile.
func (g *gzipOut) write(p []byte) (int, error) {
	if len(p) == 0 || g.err != nil {
		return 0, g.err
	}
	if g.zw == nil {
		g.zw = getGzipWriter(g.level, g.bufSize)
		g.zw.out = g
	}
	g.sent = 0
	g.in += int64(len(p))
	if _, err := g.zw.zw.Write(p); err != nil {
		return g.sent, err
	}
	return g.sent, g.err
}

// flush sends everything compressed so far (a deflate sync flush); it
// returns the bytes sent.
func (g *gzipOut) flush() int {
	if g.zw == nil || g.err != nil {
		return 0
	}
	g.sent = 0
	if g.zw.zw.Flush() == nil {
		g.zw.send()
	}
	return g.sent
}

// close ends the gzip stream (an empty body still gets one), sends it,
// sets $gzip_ratio and returns the compressor to its pool; it returns
// the bytes sent.
func (g *gzipOut) close() int {
	if g.err != nil {
		g.release()
		return 0
	}
	if g.zw == nil {
		g.zw = getGzipWriter(g.level, g.bufSize)
		g.zw.out = g
	}
	g.sent = 0
	if g.zw.zw.Close() == nil {
		g.zw.send()
	}
	sent := g.sent
	if g.out > 0 {
		g.rq.v.GzipRatio = gzipRatio(g.in, g.out)
	}
	g.release()
	return sent
}

func (g *gzipOut) release() {
	if g.zw != nil {
		putGzipWriter(g.level, g.zw)
		g.zw = nil
	}
}

// gzipRatio is $gzip_ratio: in/out with two decimals, rounded half up as
// nginx does.
func gzipRatio(in, out int64) string {
	whole := in / out
	frac := in * 100 / out % 100
	if in*1000/out%10 > 4 {
		frac++
		if frac > 99 {
			whole++
			frac = 0
		}
	}
	f := strconv.FormatInt(frac, 10)
	if frac < 10 {
		f = "0" + f
	}
	return strconv.FormatInt(whole, 10) + "." + f
}

// gzipEnd finishes a compressed body once the handler and the body
// filters are done (finish); a HEAD, a discarded or closed response
// sends nothing.
func (rq *request) gzipEnd() {
	g := rq.w.gz
	if g == nil {
		return
	}
	rq.w.gz = nil
	if rq.r.Method == http.MethodHead || rq.w.discard || rq.closed {
		g.release()
		return
	}
	rq.w.bytes += int64(g.close())
}

// gzipStatic is ngx_http_gzip_static_handler: under gzip_static on, a
// client that accepts gzip gets file.gz (when it exists) in place of file,
// with "Content-Encoding: gzip" and the .gz file's length, Last-Modified
// and ETag (no ranges); gzip_static always sends it to any client.
func gzipStatic(rq *request) rc {
	conf := rq.conf
	if conf.GzipStatic == nginxconf.GzipStaticOff || rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		return rcDeclined
	}
	uri := rq.v.URI
	if uri == "" || strings.HasSuffix(uri, "/") {
		return rcDeclined
	}
	ok := true
	if conf.GzipStatic == nginxconf.GzipStaticOn {
		ok = rq.gzipOK(rq.w.Header())
	}
	if !conf.GzipVary && !ok {
		return rcDeclined
	}
	path := rq.mapPath(uri) + ".gz"
	fi, err := rq.statFile(path)
	if err != nil {
		switch errno := unwrapErrno(err); errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG:
		case syscall.EACCES, syscall.ELOOP, syscall.EMLINK:
			rq.logf(ngxlog.Err, `open() "%s" failed (%v)`, path, errnoError{errno})
		default:
			rq.logf(ngxlog.Crit, `open() "%s" failed (%v)`, path, errnoError{errno})
		}
		return rcDeclined
	}
	if conf.GzipStatic == nginxconf.GzipStaticOn {
		rq.gzip.vary = true
		if !ok {
			return rcDeclined
		}
	}
	if fi.IsDir() {
		return rcDeclined
	}
	if !fi.Mode().IsRegular() {
		rq.logf(ngxlog.Crit, `"%s" is not a regular file`, path)
		rq.finalize(http.StatusNotFound)
		return rcDone
	}
	if c := rq.discardBody(); c != 0 {
		rq.finalize(c)
		return rcDone
	}
	o := rq.staticOptions()
	o.MaxRanges = 0 // nginx's gzip_static allows no ranges
	h := rq.w.Header()
	etag := ""
	if o.Etag {
		etag = static.ETag(fi)
	}
	if static.Preconditions(rq.r, fi.ModTime().Unix(), etag, o.IfModifiedSince) != http.StatusNotModified {
		h["Content-Encoding"] = []string{"gzip"} // a 304 drops it (nginx's not-modified filter)
	}
	status, _ := static.Serve(rq.w, rq.r, path, uri, o)
	if !rq.w.wrote {
		delete(h, "Content-Encoding")
		if status >= 300 {
			rq.finalize(status)
		}
	}
	return rcDone
}
