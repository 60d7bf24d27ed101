package proxy

import (
	"bytes"
	"errors"
	"net/http"

	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy/http1"
)

// reject answers a request the connection layer refused while reading it
// (http1.Server.Reject), as nginx finalizes such a request: an info line in
// the error log, the error page of the default server (or of the server the
// Host names, when the headers were read), an access-log line. For 408 and
// 499 nothing is sent.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, e *http1.Error) {
	st := s.state.Load()
	cc := connOf(r.Context())
	if st.cfg.HTTP == nil || cc == nil || cc.l == nil {
		return
	}
	g := cc.group(st, r)
	if g == nil || g.def == nil {
		return
	}
	srv := g.def
	if !e.Line && r.Host != "" {
		if host, ok := http1.ValidHost(r.Host); ok {
			srv, _ = g.find(host)
		}
	}
	rw := &respWriter{w: w, wire: true}
	rq := &request{s: s, st: st, w: rw, r: r, srv: srv, conf: srv.Conf, conn: cc.id}
	rw.onHeaders = rq
	rq.v = vars.NewRequest(st.cfg.HTTP.Vars, r)
	rq.v.RespHeader = rw.Header()
	rq.v.ConnID = cc.id
	rq.v.ServerName = srv.PrimaryName()
	rq.wire = wireOf(w)
	where := " while reading client request headers"
	if e.Line {
		where = " while reading client request line"
	}
	rq.logf(ngxlog.Info, "%s%s", e.Msg, where)
	defer rq.finish()
	switch e.Status {
	case http.StatusRequestTimeout, 499:
		rq.v.Status = e.Status
		rw.status = e.Status
		return
	case http1.StatusHeaderTooLarge:
		rq.special400(e.Status, "Request Header Or Cookie Too Large")
	case http1.StatusToHTTPS:
		rq.special400(e.Status, "The plain HTTP request was sent to HTTPS port")
	default:
		rw.Header().Set("Connection", "close")
		rq.finalize(e.Status)
	}
}

// special400 answers one of nginx's special 400s (494, 497): its error_page
// if one is set for code, else the 400 page with note.
func (rq *request) special400(code int, note string) {
	rq.w.Header().Set("Connection", "close")
	if _, ok := rq.conf.ErrorPages[code]; ok {
		rq.finalize(code)
		return
	}
	rq.send(http.StatusBadRequest, "text/html", special400(errorPage(http.StatusBadRequest, rq.conf.ServerTokens), note))
}

// special400 turns nginx's 400 page into one of its special 400 pages: the
// note in the title and on a line of its own.
func special400(page []byte, note string) []byte {
	page = bytes.Replace(page, []byte("<center><h1>400 Bad Request</h1></center>\r\n"),
		[]byte("<center><h1>400 Bad Request</h1></center>\r\n<center>"+note+"</center>\r\n"), 1)
	return bytes.Replace(page, []byte("<title>400 Bad Request</title>"), []byte("<title>400 "+note+"</title>"), 1)
}

// wireOf is the connection layer under w (nil for a subrequest's recorder).
func wireOf(w http.ResponseWriter) http1.Wire {
	wr, _ := w.(http1.Wire)
	return wr
}

// setWire gives the connection layer the settings of the request's level
// (keepalive_timeout, send_timeout ... are per location in nginx).
func (rq *request) setWire() {
	if rq.wire != nil && rq.conf != nil {
		setLocationParams(rq.wire.Params(), rq.conf)
		if hw, ok := rq.wire.(*h2Writer); ok {
			hw.chunk = int(rq.conf.HTTP2ChunkSize) // http2.go
		}
	}
}

// discardBody drops the request body the client already sent, before a
// response that does not read it, as nginx's ngx_http_send_response does;
// a malformed body turns the response into the error it gives (400). It
// returns that status, or 0.
func (rq *request) discardBody() int {
	if rq.wire == nil || rq.subrequest || rq.bodyDiscarded {
		return 0
	}
	rq.bodyDiscarded = true
	var e *http1.Error
	if err := rq.wire.DiscardBody(); errors.As(err, &e) {
		rq.logf(ngxlog.Err, "%s", e.Msg)
		return e.Status
	}
	return 0
}
