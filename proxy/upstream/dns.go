package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"ngxsockify/ngxlog"
)

// dnsRcodes are nginx's texts for a DNS server's error codes
// (ngx_resolver_strerror).
var dnsRcodes = map[int]string{
	1: "Format error",
	2: "Server failure",
	3: "Host not found",
	4: "Unimplemented",
	5: "Operation refused",
}

// errDNSTimeout is a lookup that got no answer in time.
var errDNSTimeout = errors.New("110: Operation timed out")

// dnsError is a DNS server's answer without addresses.
type dnsError struct{ rcode int }

func (e *dnsError) Error() string {
	if s, ok := dnsRcodes[e.rcode]; ok {
		return fmt.Sprintf("%d: %s", e.rcode, s)
	}
	return fmt.Sprintf("%d: Unknown error", e.rcode)
}

// DNS record types and the limits nginx's resolver uses.
const (
	dnsA     = 1
	dnsCNAME = 5
	dnsAAAA  = 28

	dnsResend       = 5 * time.Second // nginx's resolver resend_timeout
	dnsMaxRecursion = 50              // NGX_RESOLVER_MAX_RECURSION: CNAMEs followed
)

// dnsResult is what the servers said about one name: its addresses (IPv4
// first), or else the name its CNAME points to, kept for ttl seconds (the
// smallest TTL of the answers' records).
type dnsResult struct {
	addrs []string
	cname string
	ttl   uint32
}

// dnsQuery is one record type's query of a name being resolved
// (ngx_resolver_node_t's query and query6).
type dnsQuery struct {
	qtype uint16
	msg   []byte
	done  bool // answered (addrs holds its addresses)
	tcp   bool // its UDP answer came truncated: asked over TCP since
	addrs []string
}

// dnsReply is a datagram or TCP answer read for a lookup.
type dnsReply struct {
	msg []byte
	tcp bool
}

// resolveName asks the servers for name's A records and, unless noIPv6,
// AAAA records, as nginx's resolver does (ngx_resolve_name_locked and
// ngx_resolver_process_a): both queries go to one server, taken in turn
// (first is its index); a reply with another id or name is ignored, as are
// FORMERR and unknown error codes, and every resend timeout (5 s) the
// queries still unanswered go to the next server; a truncated UDP answer
// is asked again over TCP; an error code in either answer fails the
// lookup (not kept); answers with no address but a CNAME give that name to
// follow. An answer with neither leaves the lookup waiting for its time
// out, as in nginx. logf, if not nil, gets the send() and recv() failures
// nginx logs.
func resolveName(ctx context.Context, servers []string, first int, name string, noIPv6 bool, logf func(string)) (dnsResult, error) {
	qs := []*dnsQuery{{qtype: dnsA}}
	if !noIPv6 {
		qs = append(qs, &dnsQuery{qtype: dnsAAAA})
	}
	for _, q := range qs {
		msg, ok := dnsQuestion(uint16(rand.Uint32()), name, q.qtype)
		if !ok {
			return dnsResult{}, &dnsError{3} // nginx declines the name: NXDOMAIN
		}
		q.msg = msg
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	replies := make(chan dnsReply, 8)
	// Each server is asked on a UDP socket connected to it, as nginx's
	// ngx_udp_connect: an ICMP "port unreachable" comes back as the
	// next send's or read's ECONNREFUSED, logged, and the socket is
	// made again for the next send.
	var mu sync.Mutex
	conns := make([]*net.UDPConn, len(servers))
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for i, c := range conns {
			if c != nil {
				c.Close()
				conns[i] = nil
			}
		}
	}()
	failed := func(i int, c *net.UDPConn, op string, err error) {
		mu.Lock()
		current := conns[i] == c
		if current {
			conns[i] = nil
		}
		mu.Unlock()
		c.Close()
		if current && logf != nil && ctx.Err() == nil {
			logf(fmt.Sprintf("%s() failed (%s) while resolving, resolver: %s", op, ngxlog.Errno(err), servers[i]))
		}
	}
	conn := func(i int) *net.UDPConn {
		mu.Lock()
		defer mu.Unlock()
		if c := conns[i]; c != nil {
			return c
		}
		a, err := net.ResolveUDPAddr("udp", servers[i])
		if err != nil {
			return nil
		}
		c, err := net.DialUDP("udp", nil, a)
		if err != nil {
			return nil
		}
		conns[i] = c
		return c
	}
	// read reads c's answers; it starts after the first queries went, so
	// that an early ICMP error meets the next send, as in nginx.
	read := func(i int, c *net.UDPConn) {
		go func() {
			for {
				buf := make([]byte, 4096)
				n, err := c.Read(buf)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						failed(i, c, "recv", err)
					}
					return
				}
				select {
				case replies <- dnsReply{msg: buf[:n]}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	server := first
	reading := map[*net.UDPConn]bool{}
	send := func() {
		var used []*net.UDPConn
		for _, q := range qs {
			if q.done {
				continue
			}
			if q.tcp {
				go dnsTCP(ctx, servers[server], q.msg, replies)
				continue
			}
			if c := conn(server); c != nil {
				if _, err := c.Write(q.msg); err != nil {
					failed(server, c, "send", err)
					continue
				}
				used = append(used, c)
			}
		}
		for _, c := range used {
			if !reading[c] {
				reading[c] = true
				read(server, c)
			}
		}
	}
	send()
	resend := time.NewTimer(dnsResend)
	defer resend.Stop()
	res := dnsResult{ttl: ^uint32(0)}
	code := 0 // an error code kept from the other query's answer
	for {
		var rp dnsReply
		select {
		case <-ctx.Done():
			return dnsResult{}, errDNSTimeout
		case <-resend.C:
			server = (server + 1) % len(servers)
			send()
			resend.Reset(dnsResend)
			continue
		case rp = <-replies:
		}
		q, a, ok := dnsParse(rp.msg, name, qs)
		if !ok || q.done || a.trunc && q.tcp {
			continue
		}
		if a.trunc {
			q.tcp = true
			go dnsTCP(ctx, servers[server], q.msg, replies)
			resend.Reset(dnsResend)
			continue
		}
		res.ttl = min(res.ttl, a.ttl)
		rc := a.rcode
		if rc == 0 && code != 0 {
			rc = code
		}
		q.done, q.addrs = true, a.addrs
		other := dnsOther(qs, q)
		if rc == 0 && a.answers == 0 {
			switch {
			case other != nil && !other.done:
				continue
			case other != nil && len(other.addrs) > 0:
				return dnsAddrs(qs, res), nil
			}
			rc = 3
		}
		if rc != 0 {
			if other != nil && !other.done {
				code = rc
				continue
			}
			return dnsResult{}, &dnsError{rc}
		}
		if other != nil && !other.done {
			continue
		}
		if len(q.addrs) > 0 || other != nil && len(other.addrs) > 0 {
			return dnsAddrs(qs, res), nil
		}
		if a.cname != "" {
			res.cname = a.cname
			return res, nil
		}
		// "no A or CNAME types in DNS response": nginx waits on
	}
}

// dnsOther is the query of the other record type, or nil.
func dnsOther(qs []*dnsQuery, q *dnsQuery) *dnsQuery {
	for _, o := range qs {
		if o != q {
			return o
		}
	}
	return nil
}

// dnsAddrs is res with the queries' addresses, IPv4 first.
func dnsAddrs(qs []*dnsQuery, res dnsResult) dnsResult {
	for _, q := range qs {
		res.addrs = append(res.addrs, q.addrs...)
	}
	return res
}

// dnsTCP asks server over TCP and hands the answer to replies.
func dnsTCP(ctx context.Context, server string, msg []byte, replies chan<- dnsReply) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	if _, err := c.Write(append(out, msg...)); err != nil {
		return
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return
	}
	select {
	case replies <- dnsReply{msg: buf, tcp: true}:
	case <-ctx.Done():
	}
}

// dnsQuestion builds a recursive query for name's records of type qt, or
// false for a name nginx declines (an empty label or one over 63 bytes).
func dnsQuestion(id uint16, name string, qt uint16) ([]byte, bool) {
	m := []byte{byte(id >> 8), byte(id), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return nil, false
		}
		m = append(append(m, byte(len(l))), l...)
	}
	return append(m, 0, byte(qt>>8), byte(qt), 0, 1), true
}

// dnsAnswer is what dnsParse read of a reply.
type dnsAnswer struct {
	rcode   int
	trunc   bool
	answers int // records in the answer section
	ttl     uint32
	addrs   []string
	cname   string
}

// dnsParse reads a reply to one of qs (for name), as nginx's
// ngx_resolver_process_response and process_a do; false for a reply
// nginx ignores: not a response, FORMERR or an unknown error code, not one
// question, another name, type or id, a record of another class, an
// address record of the wrong type or size, a short message.
func dnsParse(m []byte, name string, qs []*dnsQuery) (*dnsQuery, dnsAnswer, bool) {
	var a dnsAnswer
	if len(m) < 12 || m[2]&0x80 == 0 {
		return nil, a, false
	}
	a.rcode, a.trunc = int(m[3]&0x0f), m[2]&0x02 != 0
	if a.rcode == 1 || a.rcode > 5 || binary.BigEndian.Uint16(m[4:]) != 1 {
		return nil, a, false
	}
	qname, i, ok := dnsName(m, 12)
	if !ok || i+4 > len(m) || qname != name {
		return nil, a, false
	}
	qt := binary.BigEndian.Uint16(m[i:])
	i += 4
	var q *dnsQuery
	for _, c := range qs {
		if c.qtype == qt && binary.BigEndian.Uint16(c.msg) == binary.BigEndian.Uint16(m) {
			q = c
		}
	}
	if q == nil {
		return nil, a, false
	}
	a.answers = int(binary.BigEndian.Uint16(m[6:]))
	a.ttl = ^uint32(0)
	for range a.answers {
		start := i
		for i < len(m) && m[i]&0xc0 == 0 && m[i] != 0 {
			i += 1 + int(m[i])
		}
		switch {
		case i >= len(m):
			return nil, a, false
		case m[i]&0xc0 != 0:
			i += 2
		case i-start < 1: // the root as a record's name
			return nil, a, false
		default:
			i++
		}
		if i+10 >= len(m) {
			return nil, a, false
		}
		typ, class := binary.BigEndian.Uint16(m[i:]), binary.BigEndian.Uint16(m[i+2:])
		ttl, l := int32(binary.BigEndian.Uint32(m[i+4:])), int(binary.BigEndian.Uint16(m[i+8:]))
		if class != 1 {
			return nil, a, false
		}
		a.ttl = min(a.ttl, uint32(max(ttl, 0)))
		i += 10
		switch typ {
		case dnsA, dnsAAAA:
			size := 4
			if typ == dnsAAAA {
				size = 16
			}
			if typ != qt || l != size || i+size > len(m) {
				return nil, a, false
			}
			ip, _ := netip.AddrFromSlice(m[i : i+size])
			a.addrs = append(a.addrs, ip.String())
		case dnsCNAME:
			if cn, _, ok := dnsName(m, i); ok {
				a.cname = cn
			}
		}
		i += l
	}
	return q, a, true
}

// dnsName reads the (compressed) name at m[i:], lower case and without
// the final dot, and the offset after it.
func dnsName(m []byte, i int) (string, int, bool) {
	var b strings.Builder
	end := -1
	for hops := 0; hops < 64; {
		if i >= len(m) {
			return "", 0, false
		}
		switch l := int(m[i]); {
		case l == 0:
			if end < 0 {
				end = i + 1
			}
			return b.String(), end, true
		case l&0xc0 == 0xc0:
			if i+1 >= len(m) {
				return "", 0, false
			}
			if end < 0 {
				end = i + 2
			}
			i = int(binary.BigEndian.Uint16(m[i:]) & 0x3fff)
			hops++
		default:
			if i+1+l > len(m) {
				return "", 0, false
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(strings.ToLower(string(m[i+1 : i+1+l])))
			i += 1 + l
		}
	}
	return "", 0, false
}
