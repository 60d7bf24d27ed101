package proxy

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// goErrorHead is how net/http starts the reply it writes itself, before any
// handler runs, to a request it cannot parse (bad request target, bad Host,
// headers too large, unknown Transfer-Encoding ...).
var goErrorHead = []byte("HTTP/1.1 ")

var goErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// nginxErrConn rewrites net/http's own plain-text error replies into nginx's
// error pages, so that a malformed request gets the answer nginx gives. Our
// handlers never write a reply of that exact shape (no Date, text/plain with
// that charset), so nothing else is touched. Only plain TCP and unix
// listeners use it: net/http must see a *tls.Conn to do TLS.
type nginxErrConn struct {
	net.Conn
	tokens  func() bool // server_tokens of the default server
	replied bool        // an error reply was written: close with a linger

	// After RedirectIO (a TLS tunnel on a relay event loop), crypto/tls
	// reads and writes through these instead of the socket.
	rd io.Reader
	wr io.Writer
}

// RedirectIO hands the connection's reads and writes to the WebSocket relay
// (websockify.IORedirector): under TLS the relay then reads the socket itself
// and feeds crypto/tls from memory.
func (c *nginxErrConn) RedirectIO(r io.Reader, w io.Writer) { c.rd, c.wr = r, w }

func (c *nginxErrConn) Read(p []byte) (int, error) {
	if c.rd != nil {
		return c.rd.Read(p)
	}
	return c.Conn.Read(p)
}

// goPlainOnTLS is what net/http writes under TLS when the client speaks
// plain HTTP to a TLS port.
var goPlainOnTLS = []byte("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")

func (c *nginxErrConn) Write(p []byte) (int, error) {
	if c.wr != nil {
		return c.wr.Write(p)
	}
	if bytes.Equal(p, goPlainOnTLS) {
		if _, err := c.Conn.Write(nginxErrorReply(plainHTTPOnTLS, c.tokens())); err != nil {
			return 0, err
		}
		c.replied = true
		return len(p), nil
	}
	if bytes.HasPrefix(p, goErrorHead) && len(p) > 12 {
		if i := bytes.Index(p, goErrorHeaders); i > 0 {
			if code, err := strconv.Atoi(string(p[9:12])); err == nil {
				if _, err := c.Conn.Write(nginxErrorReply(code, c.tokens())); err != nil {
					return 0, err
				}
				c.replied = true
				return len(p), nil
			}
		}
	}
	return c.Conn.Write(p)
}

// lingerTime bounds how long a rejected client's leftover request is read
// and dropped after the reply, so that the close does not reset the
// connection before the client has read the reply (nginx's lingering close).
const lingerTime = 2 * time.Second

// Close closes the connection; after an error reply it first shuts down the
// sending side and drains what the client still sends.
func (c *nginxErrConn) Close() error {
	if c.replied {
		c.replied = false
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Conn.Read(buf); err != nil {
					break
				}
			}
		}
	}
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close before its own linger.
func (c *nginxErrConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn lets the relay use the socket directly after a hijack.
func (c *nginxErrConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// nginxErrorReply maps net/http's early errors to nginx's replies: nginx
// answers 400 to anything it cannot parse, and "400 Request Header Or Cookie
// Too Large" for oversized headers.
func nginxErrorReply(code int, tokens bool) []byte {
	title := "400 Bad Request"
	page := errorPage(400, tokens)
	switch code {
	case 431:
		title = "400 Request Header Or Cookie Too Large"
		page = special400(page, "Request Header Or Cookie Too Large")
	case plainHTTPOnTLS:
		title = "400 The plain HTTP request was sent to HTTPS port"
		page = special400(page, "The plain HTTP request was sent to HTTPS port")
	case 505:
		title = "505 HTTP Version Not Supported"
		page = errorPage(505, tokens)
	case 501:
		title = "501 Not Implemented"
		page = errorPage(501, tokens)
	}
	var b bytes.Buffer
	status := title // nginx's status line keeps the plain reason for its special 400s
	if strings.HasPrefix(title, "400 ") {
		status = "400 Bad Request"
	}
	b.WriteString("HTTP/1.1 " + status + "\r\n")
	b.WriteString("Server: ngxsockify\r\nDate: " + time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") + "\r\n")
	b.WriteString("Content-Type: text/html\r\nContent-Length: " + strconv.Itoa(len(page)) + "\r\nConnection: close\r\n\r\n")
	b.Write(page)
	return b.Bytes()
}

// errListener wraps accepted connections in nginxErrConn.
type errListener struct {
	net.Listener
	tokens func() bool
}

func (l errListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &nginxErrConn{Conn: c, tokens: l.tokens}, nil
}

// plainHTTPOnTLS stands for net/http's reply to plain HTTP on a TLS port.
const plainHTTPOnTLS = -1

// special400 turns nginx's 400 page into one of its special 400 pages: the
// note in the title and on a line of its own.
func special400(page []byte, note string) []byte {
	page = bytes.Replace(page, []byte("<center><h1>400 Bad Request</h1></center>\r\n"),
		[]byte("<center><h1>400 Bad Request</h1></center>\r\n<center>"+note+"</center>\r\n"), 1)
	return bytes.Replace(page, []byte("<title>400 Bad Request</title>"), []byte("<title>400 "+note+"</title>"), 1)
}

// NetConn returns the connection c wraps: after a WebSocket upgrade the
// relay reads and writes the socket itself.
func (c *nginxErrConn) NetConn() net.Conn { return c.Conn }
