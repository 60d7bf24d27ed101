package proxy

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/nginxconf/vars"
	"ngxsockify/ngxlog"
)

// limitRateModule is limit_rate and limit_rate_after (ngx_http_core_module
// and its write filter): the response body goes to the client at most at
// the rate, after the first limit_rate_after bytes. The values are read
// when the headers go out, as nginx's write filter first runs: a $limit_rate
// set by then (set, Lua) wins over limit_rate. As in nginx, $limit_rate
// reads the configured rate only once the write filter ran: header
// filters (add_header) still read 0, the log phase the rate.
var limitRateModule = module{
	name: "limit_rate",
	register: func(e *engine) {
		e.addHeaderFilter(limitRateFilter)
		e.add(phaseLog, func(rq *request) rc {
			if rq.w != nil && rq.w.pace != nil && !rq.w.pace.upstream && rq.v.LimitRate == "" {
				rq.v.LimitRate = strconv.FormatInt(rq.w.pace.rate, 10)
			}
			return rcDeclined
		})
	},
}

func limitRateFilter(rq *request, code int) int {
	if rq.subrequest || rq.w == nil || !rq.w.wire {
		return code
	}
	var rate int64
	if v := rq.v.LimitRate; v != "" {
		rate, _ = strconv.ParseInt(v, 10, 64) // kept as bytes by $limit_rate's setter
	} else {
		rate = rq.sizeValue(rq.conf.LimitRate)
	}
	if up := rq.conf.ProxyLimitRate; up > 0 && rq.conf.ProxyPass != nil && rq.v.UpstreamAddr != "" && (rate <= 0 || up < rate) {
		// proxy_limit_rate: nginx reads the backend's body at most at
		// that rate (ngx_event_pipe_read_upstream: the same allowance by
		// whole seconds), so it reaches the client no faster
		rq.w.pace = &pacer{ctx: rq.r.Context(), rate: up, start: rq.v.Start, watch: rq.watchConn, upstream: true}
		return code
	}
	if rate <= 0 {
		return code
	}
	rq.w.pace = &pacer{ctx: rq.r.Context(), rate: rate, after: rq.sizeValue(rq.conf.LimitRateAfter), start: rq.v.Start,
		watch: rq.watchConn}
	return code
}

// sizeValue evaluates a size that may hold variables; a value that is not
// a size is logged in nginx's words and reads as 0.
func (rq *request) sizeValue(t *vars.Template) int64 {
	if t == nil {
		return 0
	}
	v := t.Eval(rq.v)
	n, err := nginxconf.ParseSize(v)
	if err != nil {
		rq.logf(ngxlog.Err, `invalid size "%s"`, v)
		return 0
	}
	return n
}

// pacer writes a response body at limit_rate as nginx's write filter
// does: by the whole seconds since the request started, the client may
// have rate*(seconds+1) bytes beyond the first `after`; past that the
// writer waits, and after each write it waits as long as those bytes take
// at the rate. Waits are timers (no thread is held) and end when the
// client goes away: the connection is watched meanwhile, as nginx's
// delayed writer watches the read side (ngx_http_test_reading).
type pacer struct {
	ctx         context.Context
	rate, after int64
	start       time.Time
	sent        int64                                // body bytes written
	watch       func(gone func(error)) (stop func()) // the client's side, during waits
	upstream    bool                                 // proxy_limit_rate's: $limit_rate does not read it
	// What the last write met, as nginx's connection would show it after
	// its write filter: delayed (c->write->delayed) when the rate made it
	// wait, held (NGX_HTTP_WRITE_BUFFERED) when bytes had to wait to go.
	delayed, held bool
}

func (p *pacer) write(dst io.Writer, b []byte) (int, error) {
	written := 0
	p.delayed, p.held = false, false
	for len(b) > 0 {
		secs := time.Now().Unix() - p.start.Unix()
		limit := p.rate*(secs+1) - (p.sent - p.after)
		if limit <= 0 {
			p.delayed, p.held = true, true
			if err := p.wait(time.Duration(-limit*1000/p.rate+1) * time.Millisecond); err != nil {
				return written, err
			}
			continue
		}
		n, err := dst.Write(b[:min(int64(len(b)), limit)])
		if f, ok := dst.(http.Flusher); ok {
			f.Flush() // the bytes leave now, not when a buffer fills
		}
		before := p.sent
		p.sent += int64(n)
		written += n
		b = b[n:]
		if err != nil {
			return written, err
		}
		if d := (max(p.sent-p.after, 0) - max(before-p.after, 0)) * 1000 / p.rate; d > 0 {
			p.delayed = true
			p.held = p.held || len(b) > 0
			if err := p.wait(time.Duration(d) * time.Millisecond); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (p *pacer) wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	gone := make(chan error, 1)
	defer p.watch(func(err error) { gone <- err })()
	select {
	case <-t.C:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	case err := <-gone:
		return err
	}
}
