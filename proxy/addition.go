package proxy

import (
	"bufio"
	"errors"
	"net"
	"net/http"
)

// additionModule is nginx's ngx_http_addition_filter_module: on a main
// request's 200 response of the addition_types (text/html by default) in a
// location with add_before_body or add_after_body, its header filter drops
// Content-Length and Accept-Ranges (so a Range gets the whole body) and
// turns the ETag weak (Last-Modified stays); its body filter runs the
// add_before_body subrequest when the body starts and the add_after_body
// one once it has ended, each one's output going to the client in its
// place as it comes (nginx's postponed subrequests). Subrequests get no
// additions, so a location may add its own URI.
//
// In nginx's chain the addition body filter comes before sub_filter,
// charset recoding and SSI, and the subrequests' output does not pass
// through the main request's filters: this one wraps their body filter and
// writes the subrequests' output straight to the connection.
var additionModule = module{
	name: "addition",
	register: func(e *engine) {
		e.addHeaderFilter(additionHeaderFilter)
	},
}

// additionApplies reports whether a response of type ctype to rq gets
// additions (the static module then serves no ranges).
func (rq *request) additionApplies(ctype string) bool {
	conf := rq.conf
	return conf != nil && !rq.subrequest && (conf.AddBeforeBody != "" || conf.AddAfterBody != "") &&
		subTypeMatch(conf.AdditionTypes, ctype)
}

// additionHeaderFilter starts the addition filter on a response it
// applies to.
func additionHeaderFilter(rq *request, code int) int {
	if code != http.StatusOK || rq.w.discard {
		return code
	}
	h := rq.w.Header()
	if !rq.additionApplies(h.Get("Content-Type")) {
		return code
	}
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	weakETag(h)
	rq.w.stream = true
	if rq.r.Method == http.MethodHead {
		return code // no body, no additions
	}
	conf := rq.conf
	before, after := conf.AddBeforeBody, conf.AddAfterBody
	started := false
	// the before-body subrequest is made when the body starts and runs
	// once the filters after this one (sub_filter, SSI) went through the
	// first piece, as nginx's posted subrequest does: an SSI echo there
	// reads variables as they were before it; its output still comes
	// first
	start := func() {
		if !started {
			started = true
			if before != "" {
				rq.posted = append(rq.posted, func() { rq.addition(before) })
			}
		}
	}
	prev := rq.w.body // sub_filter's, charset's, SSI's: they come after this one
	// nginx's SSI filter stops at a waited include until its subrequest
	// is done, and the addition filter, before it in the chain, posts the
	// after-body subrequest once the last piece went through: the
	// after-body goes where the SSI stopped, before the rest of the page.
	// So the output after a waited include is held (rest) until the next
	// piece or the end; marks are where, in rest, other ones ended.
	var rest []byte
	var marks []int
	rq.w.body = func(p []byte) []byte {
		start()
		if prev != nil {
			p = prev(p)
		}
		rq.runPosted()
		if after == "" || (len(rest) == 0 && len(rq.ssiWaits) == 0) {
			return p
		}
		for _, m := range rq.ssiWaits {
			marks = append(marks, len(rest)+m)
		}
		rq.ssiWaits = nil
		out := append(rest, p...)
		rest = nil
		if len(marks) > 0 {
			stop := marks[0]
			rest = append([]byte(nil), out[stop:]...)
			out = out[:stop]
			for i := range marks[1:] {
				marks[i] = marks[i+1] - stop
			}
			marks = marks[:len(marks)-1]
		}
		return out
	}
	prevTail := rq.w.tail
	rq.w.tail = func() {
		start() // a body that never came still ends (nginx's last buffer)
		rq.runPosted()
		if len(rest) > 0 {
			// the page's end came in the pass the SSI stopped in: it
			// follows the after-body
			if !rq.w.discard && !rq.closed {
				rq.addition(after)
			}
			if !rq.w.discard && !rq.closed {
				n, _ := rq.w.write(rest)
				rq.w.bytes += int64(n)
			}
			if prevTail != nil {
				prevTail()
			}
			return
		}
		if prevTail != nil {
			prevTail()
		}
		if after != "" && !rq.w.discard && !rq.closed {
			rq.addition(after)
		}
	}
	return code
}

// runPosted runs the subrequests body filters posted (rq.posted), in the
// order they were made.
func (rq *request) runPosted() {
	for len(rq.posted) > 0 {
		run := rq.posted[0]
		rq.posted = rq.posted[1:]
		run()
	}
}

// addition runs the subrequest of uri, as nginx's ngx_http_subrequest with
// the URI as written (no arguments: a "?" is part of the path), and sends
// its output (its error page too) to the client as it comes.
func (rq *request) addition(uri string) {
	if rq.depth+1 >= maxSubrequestDepth {
		return
	}
	out := &additionOut{recorder: &recorder{header: http.Header{}, discard: true}, main: rq.w, rq: rq}
	rq.bodySubrequest(uri, "", out, out.recorder)
}

// additionOut passes a subrequest's body on to the main response's
// connection (counted in its $body_bytes_sent, paced by its limit_rate);
// its recorder keeps the status, the headers and the count for the
// subrequest's own log line.
type additionOut struct {
	*recorder
	main *respWriter
	rq   *request // the main request
}

func (o *additionOut) Write(p []byte) (int, error) {
	o.recorder.Write(p)
	if o.main.discard {
		return len(p), nil
	}
	n, err := o.main.write(p)
	o.main.bytes += int64(n)
	if err == nil && o.main.gz != nil {
		return len(p), nil // n counts the compressed bytes
	}
	return n, err
}

// Flush sends what the main response's connection holds.
func (o *additionOut) Flush() { o.main.Flush() }

// Hijack is how a subrequest closes its connection (return 444, a
// backend's response cut short): as in nginx, the connection of the main
// request closes, and it ends.
func (o *additionOut) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !o.rq.closed {
		o.rq.closeConn()
	}
	return nil, nil, errAdditionClosed
}

var errAdditionClosed = errors.New("the main request's connection is closed")
