package upstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
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

// lookupDNS asks server, over UDP, for host's A records and, unless
// noIPv6, its AAAA records, as nginx's resolver does: the name as given
// (no search domains, no hosts file), every address of the answers
// (IPv4 first), CNAME chains left to the server. An answer with no address
// is its error code ("3: Host not found" for an empty NOERROR answer too).
func lookupDNS(ctx context.Context, server, host string, noIPv6 bool) ([]string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// a lookup whose request ends (a Lua thread's ngx.exit) stops at once
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	types := []dnsmessage.Type{dnsmessage.TypeA}
	if !noIPv6 {
		types = append(types, dnsmessage.TypeAAAA)
	}
	ids := map[uint16]dnsmessage.Type{} // query id: type
	for _, qt := range types {
		id := uint16(rand.Uint32())
		q, err := dnsQuery(id, host, qt)
		if err != nil {
			return nil, err
		}
		ids[id] = qt
		if _, err := c.Write(q); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, err
		}
	}
	addrs := map[dnsmessage.Type][]string{}
	rcode := 3
	buf := make([]byte, 4096)
	for len(ids) > 0 {
		n, err := c.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// a server port that is closed (ICMP): nginx's resolver
			// ignores the error and waits for resolver_timeout
			continue
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if errors.Is(ctx.Err(), context.Canceled) {
					return nil, ctx.Err()
				}
				return nil, errDNSTimeout
			}
			return nil, err
		}
		id, code, got, ok := dnsAnswer(buf[:n], ids)
		if !ok {
			continue // not an answer to our queries
		}
		qt := ids[id]
		delete(ids, id)
		addrs[qt] = got
		if code != 0 && qt == dnsmessage.TypeA {
			rcode = code
		}
	}
	all := append(addrs[dnsmessage.TypeA], addrs[dnsmessage.TypeAAAA]...)
	if len(all) == 0 {
		return nil, &dnsError{rcode}
	}
	return all, nil
}

// dnsQuery builds a recursive query for name's records of type qt.
func dnsQuery(id uint16, name string, qt dnsmessage.Type) ([]byte, error) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	n, err := dnsmessage.NewName(name)
	if err != nil || strings.Contains(name, "..") || name == "." {
		return nil, &dnsError{3}
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: n, Type: qt, Class: dnsmessage.ClassINET}); err != nil {
		return nil, &dnsError{3} // a label over 63 bytes
	}
	return b.Finish()
}

// dnsAnswer reads a response to one of the queries ids: its id, rcode and
// the addresses of its answer records of the queried type.
func dnsAnswer(m []byte, ids map[uint16]dnsmessage.Type) (id uint16, rcode int, addrs []string, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(m)
	if err != nil || !h.Response {
		return 0, 0, nil, false
	}
	qt, ok := ids[h.ID]
	if !ok {
		return 0, 0, nil, false
	}
	if err := p.SkipAllQuestions(); err != nil {
		return h.ID, int(h.RCode), nil, true
	}
	for {
		ah, err := p.AnswerHeader()
		if err != nil {
			break
		}
		if ah.Class != dnsmessage.ClassINET || ah.Type != qt {
			if p.SkipAnswer() != nil {
				break
			}
			continue
		}
		switch qt {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err != nil {
				return h.ID, int(h.RCode), addrs, true
			}
			addrs = append(addrs, net.IP(r.A[:]).String())
		case dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err != nil {
				return h.ID, int(h.RCode), addrs, true
			}
			addrs = append(addrs, net.IP(r.AAAA[:]).String())
		}
	}
	return h.ID, int(h.RCode), addrs, true
}
