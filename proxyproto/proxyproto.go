// Package proxyproto reads the PROXY protocol header that a load balancer
// (HAProxy's send-proxy and send-proxy-v2) puts before a client
// connection's bytes, as nginx 1.22's ngx_proxy_protocol_read does:
// version 1 (text) and version 2 (binary), TLVs skipped (nginx 1.23.2's
// $proxy_protocol_tlv_* are not 1.22's). Like nginx, it parses only the
// bytes of one read: a header split across reads is a broken one.
//
// The connection layer (proxy/http1) reads the header of the connections
// of a `listen ... proxy_protocol` address and puts what it told in the
// connection's context (NewContext); the $proxy_protocol_* variables and
// realip's `real_ip_header proxy_protocol` read it from there.
package proxyproto

import (
	"context"
	"fmt"
	"strconv"
)

// Header is the client's and the balancer's addresses a header carried.
type Header struct {
	// SrcAddr and DstAddr are the client's and the balancer's addresses:
	// as sent in a version 1 header (nginx checks only that they hold hex
	// digits, ':' and '.'), printed as nginx prints them from a version 2
	// one.
	SrcAddr, DstAddr string
	// SrcPort and DstPort are their ports; 0 reads as "" in the variables.
	SrcPort, DstPort uint16
}

// Error is a header nginx refuses: the connection closes. Msg is nginx's
// error-log message, "" for the refusal nginx does not log (a version 2
// address block shorter than its family's).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// MaxHeader is the longest version 1 header (nginx's
// NGX_PROXY_PROTOCOL_MAX_HEADER). On a TLS listener nginx looks at this
// many bytes and one more for the header and the TLS record after it.
const MaxHeader = 107

// v2Signature opens a version 2 header.
const v2Signature = "\r\n\r\n\x00\r\nQUIT\n"

// v2HeaderLen is a version 2 header's fixed part: the signature, the
// version and command, the family and transport, and the length.
const v2HeaderLen = 16

// Read parses the header at the start of buf, the bytes of one read. It
// returns the addresses (nil when the header carries none: "PROXY
// UNKNOWN", a version 2 LOCAL command, another transport or family) and
// the header's length, or an *Error.
func Read(buf []byte) (*Header, int, error) {
	if len(buf) >= v2HeaderLen && string(buf[:len(v2Signature)]) == v2Signature {
		return readV2(buf)
	}
	if len(buf) < 8 || string(buf[:6]) != "PROXY " {
		return nil, 0, broken(buf)
	}
	p := buf[6:]
	if len(p) >= 7 && string(p[:7]) == "UNKNOWN" {
		// whatever follows, up to the line's end
		for i := 7; i < len(p)-1; i++ {
			if p[i] == '\r' && p[i+1] == '\n' {
				return nil, 6 + i + 2, nil
			}
		}
		return nil, 0, broken(buf)
	}
	if len(p) < 5 || string(p[:3]) != "TCP" || p[3] != '4' && p[3] != '6' || p[4] != ' ' {
		return nil, 0, broken(buf)
	}
	p = p[5:]
	var h Header
	var ok bool
	if h.SrcAddr, p, ok = v1Addr(p); !ok {
		return nil, 0, broken(buf)
	}
	if h.DstAddr, p, ok = v1Addr(p); !ok {
		return nil, 0, broken(buf)
	}
	if h.SrcPort, p, ok = v1Port(p, ' '); !ok {
		return nil, 0, broken(buf)
	}
	if h.DstPort, p, ok = v1Port(p, '\r'); !ok {
		return nil, 0, broken(buf)
	}
	if len(p) == 0 || p[0] != '\n' {
		return nil, 0, broken(buf)
	}
	return &h, len(buf) - len(p) + 1, nil
}

// broken is nginx's refusal of a header that is neither version: the
// bytes read, as they are.
func broken(buf []byte) error {
	return &Error{Msg: `broken header: "` + string(buf) + `"`}
}

// v1Addr reads an address and the space after it: hex digits, ':' and
// '.' (ngx_proxy_protocol_read_addr).
func v1Addr(p []byte) (string, []byte, bool) {
	for i, ch := range p {
		switch {
		case ch == ' ':
			return string(p[:i]), p[i+1:], true
		case ch == ':' || ch == '.' || '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F':
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

// v1Port reads a port, 0 to 65535 in decimal digits, and the separator
// after it (ngx_proxy_protocol_read_port).
func v1Port(p []byte, sep byte) (uint16, []byte, bool) {
	for i, ch := range p {
		if ch != sep {
			continue
		}
		if i == 0 {
			return 0, nil, false
		}
		n := 0
		for _, d := range p[:i] {
			if d < '0' || d > '9' {
				return 0, nil, false
			}
			if n = n*10 + int(d-'0'); n > 65535 {
				return 0, nil, false
			}
		}
		return uint16(n), p[i+1:], true
	}
	return 0, nil, false
}

// readV2 parses a version 2 header (ngx_proxy_protocol_v2_read).
func readV2(buf []byte) (*Header, int, error) {
	if v := buf[12] >> 4; v != 2 {
		return nil, 0, &Error{Msg: fmt.Sprintf("unknown PROXY protocol version: %d", v)}
	}
	n := int(buf[14])<<8 | int(buf[15])
	if len(buf)-v2HeaderLen < n {
		return nil, 0, &Error{Msg: "header is too large"}
	}
	end := v2HeaderLen + n
	body := buf[v2HeaderLen:end]
	// only the PROXY command over STREAM carries addresses nginx reads
	if buf[12]&0x0f != 1 || buf[13]&0x0f != 1 {
		return nil, end, nil
	}
	var h Header
	switch buf[13] >> 4 {
	case 1: // AF_INET
		if len(body) < 12 {
			return nil, 0, &Error{}
		}
		h.SrcAddr = inetNtop(body[0:4])
		h.DstAddr = inetNtop(body[4:8])
		h.SrcPort, h.DstPort = port(body[8:]), port(body[10:])
	case 2: // AF_INET6
		if len(body) < 36 {
			return nil, 0, &Error{}
		}
		h.SrcAddr = Inet6Ntop(body[0:16])
		h.DstAddr = Inet6Ntop(body[16:32])
		h.SrcPort, h.DstPort = port(body[32:]), port(body[34:])
	default:
		return nil, end, nil
	}
	return &h, end, nil
}

func port(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func inetNtop(b []byte) string {
	var s []byte
	for i, x := range b {
		if i > 0 {
			s = append(s, '.')
		}
		s = strconv.AppendUint(s, uint64(x), 10)
	}
	return string(s)
}

// Inet6Ntop prints a 16-byte IPv6 address as nginx's ngx_inet6_ntop: the
// first longest run of two or more zero groups as "::", and the last four
// bytes as an IPv4 address after ::ffff:, after :: alone, and after ::
// and a last group that is neither 0 nor ends in 1 (nginx's test, kept).
func Inet6Ntop(p []byte) string {
	zero, last, maxRun, n := -1, -1, 1, 0
	for i := 0; i < 16; i += 2 {
		if p[i] != 0 || p[i+1] != 0 {
			if maxRun < n {
				zero, maxRun = last, n
			}
			n = 0
			continue
		}
		if n == 0 {
			last = i
		}
		n++
	}
	if maxRun < n {
		zero, maxRun = last, n
	}
	text := make([]byte, 0, 46)
	end := 16
	if zero == 0 {
		if maxRun == 5 && p[10] == 0xff && p[11] == 0xff || maxRun == 6 ||
			maxRun == 7 && p[14] != 0 && p[15] != 1 {
			end = 12
		}
		text = append(text, ':')
	}
	for i := 0; i < end; i += 2 {
		if i == zero {
			text = append(text, ':')
			i += (maxRun - 1) * 2
			continue
		}
		text = strconv.AppendUint(text, uint64(p[i])<<8|uint64(p[i+1]), 16)
		if i < 14 {
			text = append(text, ':')
		}
	}
	if end == 12 {
		text = append(text, inetNtop(p[12:16])...)
	}
	return string(text)
}

type ctxKey struct{}

// NewContext returns ctx carrying h, the header of the connection whose
// requests use ctx.
func NewContext(ctx context.Context, h *Header) context.Context {
	return context.WithValue(ctx, ctxKey{}, h)
}

// FromContext returns the header NewContext put in ctx: nil when the
// connection had none, or one without addresses.
func FromContext(ctx context.Context) *Header {
	h, _ := ctx.Value(ctxKey{}).(*Header)
	return h
}
