package proxy

import (
	"errors"
	"net"
	"net/http"
	"time"

	"ngxsockify/proxy/proxypass"
	"ngxsockify/proxy/websockify"
)

// upgradeHeadTimeout bounds the write of the 101 to the client (nginx's
// send_timeout default).
const upgradeHeadTimeout = 60 * time.Second

// proxyUpgrade relays an upgraded connection (WebSocket and the like
// through proxy_pass) after the backend's 101, as nginx's upgraded mode
// does: the 101 with the backend's headers (Connection: upgrade), then the
// bytes both ways until either side closes or nothing moved for
// proxy_read_timeout. The relay runs on the websockify event loops
// (websockify.RelayAsync, raw bytes both ways; goroutines when a side is
// TLS), as one of the server's tunnels: reload and graceful stop count and
// drain it like a websockify tunnel. It takes backend over (the caller
// must not close it). As for websockify_pass (websockify.go), the handler
// returns once the relay runs, so that its goroutine, buffers and request
// are not held for the connection's lifetime (an idle connection costs
// what a websockify tunnel does); the relay's end writes the access-log
// line, after the handler has returned, and runs the request's cleanups
// (limit_conn counts the connection until then).
func (rq *request) proxyUpgrade(backend net.Conn, res *proxypass.Response) {
	// Counted as starting until the relay is registered (RelayAsync), so
	// that a graceful quit begun after the client got the 101 waits for it.
	if rq.s.tunnels.Hold() {
		defer rq.s.tunnels.Release()
	}
	client, brw := rq.hijackClient()
	if client == nil {
		return
	}
	rq.w.wrote, rq.w.status = true, http.StatusSwitchingProtocols
	rq.v.Status = http.StatusSwitchingProtocols

	// the backend's lines that go out: Upgrade, and the others that are
	// neither hop-by-hop nor hidden
	var fields []moreField
	for _, f := range res.Fields {
		if key := http.CanonicalHeaderKey(f.Name); key == "Upgrade" || !proxypass.ResponseHopByHop(key) && !rq.proxyHidden(key) {
			fields = append(fields, moreField{f.Name, f.Value})
		}
	}
	server, date := rq.conf.ServerTokens, true // ours, unless a command names them
	if rq.conf.MoreOutput {
		// more_set_headers and more_clear_headers apply (headers_more.go)
		fields, server, date = rq.moreUpgradeFields(fields, server)
	}
	head := []byte("HTTP/1.1 101 Switching Protocols\r\n")
	if server {
		head = append(head, "Server: ngxsockify\r\n"...)
	}
	if date {
		head = append(head, "Date: "...)
		head = append(head, time.Now().UTC().Format(http.TimeFormat)...)
		head = append(head, "\r\n"...)
	}
	head = append(head, "Connection: upgrade\r\n"...)
	for _, f := range fields {
		head = append(append(append(append(head, f.name...), ": "...), f.value...), "\r\n"...)
	}
	head = append(head, "\r\n"...)
	headLen := int64(len(head))
	head = append(head, res.Rest...)           // what the backend sent after its 101
	rq.w.Header().Set("Connection", "upgrade") // $sent_http_connection

	client.SetWriteDeadline(time.Now().Add(upgradeHeadTimeout))
	n, err := client.Write(head)
	rq.w.bytes = max(0, int64(n)-headLen) // $body_bytes_sent: what followed the 101
	rq.headSent = min(int64(n), headLen)
	if err != nil {
		client.Close()
		return
	}
	client.SetWriteDeadline(time.Time{})
	if n := brw.Reader.Buffered(); n > 0 { // the client spoke first
		b, _ := brw.Reader.Peek(n)
		backend.SetWriteDeadline(time.Now().Add(rq.conf.ProxySendTimeout))
		if _, err := backend.Write(b); err != nil {
			client.Close()
			return
		}
		backend.SetWriteDeadline(time.Time{})
	}
	// The connection layer sees none of what follows (hijacked): the log
	// phase takes $body_bytes_sent from what the relay counts.
	rq.wire = nil
	idle := rq.conf.ProxyReadTimeout
	opts := websockify.Options{ReadTimeout: idle, SendTimeout: idle, Logger: rq.errorLog().Slog(), Generation: rq.st.gen}

	// The callback keeps the request only when a log phase needs it.
	s, headBytes := rq.s, rq.w.bytes
	handlerDone := make(chan struct{})
	var returned time.Time // when the handler returned; written before handlerDone closes
	var logAccess func(end websockify.Result)
	if rq.st.confs[rq.conf.ID].logs {
		logAccess = func(end websockify.Result) {
			// $upstream_response_time spans the connection, as in nginx.
			rq.v.UpstreamResponseTime += time.Since(returned)
			rq.v.Completed = tunnelCompleted(end.Err)
			rq.logPhase(http.StatusSwitchingProtocols, headBytes+end.BytesSent)
		}
	}
	cleanups := rq.cleanups
	_, ok := websockify.RelayAsync(client, backend, opts, s.tunnels, func(end websockify.Result) {
		<-handlerDone // the handler (proxy_pass's deferred updates of rq.v) is over
		if logAccess != nil {
			logAccess(end)
		}
		for _, f := range cleanups {
			f()
		}
		s.metrics.request(http.StatusSwitchingProtocols)
		s.stats.tunnelEnded()
	})
	if !ok {
		return // not started (a graceful stop began): the request ends now
	}
	// The relay ends the request: finish runs only this cleanup, and
	// neither logs nor counts the request's end.
	rq.hijacked = true
	rq.cleanups = []func(){func() {
		returned = time.Now()
		close(handlerDone)
	}}
}

// proxyHidden reports whether a backend header is not passed:
// proxy_hide_header's and nginx's default list, unless proxy_pass_header
// names it.
func (rq *request) proxyHidden(key string) bool {
	for _, p := range rq.conf.ProxyPassHeaders {
		if p == key {
			return false
		}
	}
	for _, list := range [2][]string{proxypass.DefaultHidden, rq.conf.ProxyHideHeaders} {
		for _, n := range list {
			if n == key {
				return true
			}
		}
	}
	return false
}

// tunnelCompleted tells whether a tunnel that ended with err ends its
// request as answered in full ($request_completion): nginx finalizes an
// upgraded connection normally whichever side closed or failed, or when
// the backend was idle too long, but not when a send to the client timed
// out, nor when a stopping worker closed it.
func tunnelCompleted(err error) bool {
	return !errors.Is(err, websockify.ErrSendTimeout) && !errors.Is(err, websockify.ErrShutdown) &&
		!errors.Is(err, websockify.ErrInternal)
}
