package http1

import (
	"context"
	"io"

	"ngxsockify/ngxlog"
	"ngxsockify/proxyproto"
)

// readProxyHeader reads the PROXY protocol header that a connection of a
// proxy_protocol address starts with, as nginx does: from the bytes of one
// read, within client_header_timeout (a header split across reads is a
// broken one). Under TLS it reads what nginx peeks at, and returns the
// bytes after the header for the handshake (none when the read held the
// header alone); otherwise the read fills c.br, where the bytes after the
// header stay for the request. It returns ctx with the header's addresses
// (proxyproto.FromContext); false: the connection ends, its reason logged
// as nginx logs it.
func (c *conn) readProxyHeader(ctx context.Context, underTLS bool) (context.Context, []byte, bool) {
	c.readDeadline(c.params.HeaderTimeout)
	var b []byte
	var err error
	if underTLS {
		b = make([]byte, proxyproto.MaxHeader+1)
		var n int
		n, err = c.rwc.Read(b)
		b = b[:n]
	} else if _, err = c.br.Peek(1); err == nil {
		// nginx's first read fills client_header_buffer_size
		b, _ = c.br.Peek(min(c.br.Buffered(), max(c.params.HeaderBufferSize, 1)))
	}
	if len(b) == 0 {
		switch {
		case isTimeout(err):
			c.connLog(ctx, ngxlog.Info, "client timed out (110: Connection timed out) while reading PROXY protocol")
		case err == io.EOF:
			c.connLog(ctx, ngxlog.Info, "client closed connection while reading PROXY protocol")
		}
		return ctx, nil, false
	}
	h, n, err := proxyproto.Read(b)
	if err != nil {
		if msg := err.Error(); msg != "" {
			c.connLog(ctx, ngxlog.Err, msg+" while reading PROXY protocol")
		}
		return ctx, nil, false
	}
	if h != nil {
		ctx = proxyproto.NewContext(ctx, h)
	}
	rest := b[n:]
	if !underTLS {
		c.br.Discard(n)
		rest = nil
	}
	if len(rest) == 0 && (underTLS || c.br.Buffered() == 0) {
		// the header came alone: the request's first bytes are waited
		// for as a new connection's are
		if w, ok := c.rwc.(interface{ WaitAsNew() }); ok {
			w.WaitAsNew()
		}
	}
	return ctx, rest, true
}

func (c *conn) connLog(ctx context.Context, level ngxlog.Level, msg string) {
	if c.s.ConnLog != nil {
		c.s.ConnLog(ctx, c.rwc, level, msg)
	}
}
