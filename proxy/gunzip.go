package proxy

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"

	"ngxsockify/ngxlog"
)

// gunzipModule is nginx's ngx_http_gunzip_filter_module: under `gunzip
// on`, a response with "Content-Encoding: gzip" for a client that does
// not accept gzip (ngx_http_gzip_ok, so subrequests too: SSI includes) is
// decompressed: Content-Encoding, Content-Length and Accept-Ranges go,
// the ETag turns weak, and gzip_vary adds Vary. Its header filter comes
// before sub_filter's, charset's and SSI's, and the body is decompressed
// before their body filters (and body_filter_by_lua's, which nginx runs
// first) see it.
var gunzipModule = module{
	name: "gunzip",
	register: func(e *engine) {
		e.addHeaderFilter(gunzipHeaderFilter)
	},
}

func gunzipHeaderFilter(rq *request, code int) int {
	conf := rq.conf
	if conf == nil || !conf.Gunzip || rq.w.discard {
		return code
	}
	h := rq.w.Header()
	if ce := headerFirst(h, "Content-Encoding"); len(ce) != 4 || !strings.EqualFold(ce, "gzip") {
		return code
	}
	rq.gzip.vary = true
	if rq.gzipOK(h) {
		return code
	}
	delete(h, "Content-Encoding")
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	weakETag(h)
	rq.w.gunz = &gunzipper{rq: rq}
	if _, h2 := rq.wire.(*h2Writer); h2 || rq.wire == nil {
		rq.w.stream = true
	}
	return code
}

// gunzipper decompresses a body that arrives in pieces: a goroutine runs
// the decompressor over the pieces handed to it, and each write waits
// until it asks for more input (or is done), taking what it decompressed
// meanwhile. A sync-flushed piece (a streamed backend's) comes out whole.
type gunzipper struct {
	rq      *request
	in      chan []byte   // pieces of the compressed body; closed at its end
	need    chan struct{} // the decompressor wants input; closed when it is done
	pending []byte        // the piece being read
	eof     bool
	out     []byte // decompressed, not yet taken
	err     error  // set before need is closed
	stopped bool
}

// Read gives the decompressor the compressed bytes (its goroutine).
func (g *gunzipper) Read(p []byte) (int, error) {
	if len(g.pending) == 0 {
		if g.eof {
			return 0, io.EOF
		}
		g.need <- struct{}{}
		piece, ok := <-g.in
		if !ok {
			g.eof = true
			return 0, io.EOF
		}
		g.pending = piece
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

// run is the decompressor's goroutine.
func (g *gunzipper) run() {
	defer close(g.need)
	zr, err := gzip.NewReader(g)
	if err != nil {
		g.err = err
		return
	}
	buf := make([]byte, 8192)
	for {
		n, err := zr.Read(buf)
		g.out = append(g.out, buf[:n]...)
		if err == io.EOF {
			return
		}
		if err != nil {
			g.err = err
			return
		}
	}
}

// write decompresses p and returns what came out of it.
func (g *gunzipper) write(p []byte) []byte {
	if g.stopped || len(p) == 0 {
		return nil
	}
	if g.in == nil {
		g.in, g.need = make(chan []byte), make(chan struct{})
		g.rq.cleanups = append(g.rq.cleanups, g.stop)
		go g.run()
		if _, ok := <-g.need; !ok {
			return g.take()
		}
	}
	g.in <- p
	if _, ok := <-g.need; !ok {
		g.stopped = true
	}
	return g.take()
}

// take returns the output decompressed so far.
func (g *gunzipper) take() []byte {
	out := g.out
	g.out = nil
	return out
}

// end closes the input and returns the rest of the output.
func (g *gunzipper) end() []byte {
	if g.in == nil || g.stopped {
		g.stopped = true
		return g.take()
	}
	g.stopped = true
	close(g.in)
	for range g.need {
	}
	return g.take()
}

// stop ends the goroutine when the request ends without the body's end.
func (g *gunzipper) stop() {
	if g.in != nil && !g.stopped {
		g.end()
	}
}

// gunzipEnd writes the last decompressed bytes through the body filters
// once the compressed body has ended (finish). A body that is not valid
// gzip, ends early, or is empty ends the request as nginx's inflate()
// error does: logged, and the connection closed (before anything is sent
// when the body was small, as nginx holds the head until the body).
func (rq *request) gunzipEnd() {
	g := rq.w.gunz
	if g == nil {
		return
	}
	started := g.in != nil
	out := g.end()
	rq.w.gunz = nil
	if rq.r.Method == http.MethodHead || rq.closed || rq.w.discard {
		return
	}
	if len(out) > 0 {
		rq.w.filterWrite(out)
	}
	switch {
	case g.err == nil && (started || rq.w.status == http.StatusNoContent || rq.w.status == http.StatusNotModified):
		return
	case g.err == nil || g.err == io.ErrUnexpectedEOF:
		rq.logf(ngxlog.Err, "inflate() returned -5 on response end")
	default:
		rq.logf(ngxlog.Err, "inflate() failed: 0, -3")
	}
	if rq.subrequest {
		return
	}
	rq.closed = true
	if hj, ok := rq.w.w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}
