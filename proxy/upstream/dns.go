package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
)

// DNS record types and the answer codes nginx words.
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsClassIN  = 1
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
	types := []uint16{dnsTypeA}
	if !noIPv6 {
		types = append(types, dnsTypeAAAA)
	}
	ids := map[uint16]uint16{} // query id: type
	for _, qt := range types {
		id := uint16(rand.Uint32())
		q, err := dnsQuery(id, host, qt)
		if err != nil {
			return nil, err
		}
		ids[id] = qt
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
	}
	addrs := map[uint16][]string{}
	rcode := 3
	buf := make([]byte, 4096)
	for len(ids) > 0 {
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
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
		if code != 0 && qt == dnsTypeA {
			rcode = code
		}
	}
	all := append(addrs[dnsTypeA], addrs[dnsTypeAAAA]...)
	if len(all) == 0 {
		return nil, &dnsError{rcode}
	}
	return all, nil
}

// dnsQuery builds a recursive query for name's records of type qt.
func dnsQuery(id uint16, name string, qt uint16) ([]byte, error) {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; one question
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return nil, &dnsError{3}
		}
		q = append(append(q, byte(len(label))), label...)
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, qt)
	return binary.BigEndian.AppendUint16(q, dnsClassIN), nil
}

// dnsAnswer reads a response to one of the queries ids: its id, rcode and
// the addresses of its answer records of the queried type.
func dnsAnswer(m []byte, ids map[uint16]uint16) (id uint16, rcode int, addrs []string, ok bool) {
	if len(m) < 12 || m[2]&0x80 == 0 {
		return 0, 0, nil, false
	}
	id = binary.BigEndian.Uint16(m)
	qt, ok := ids[id]
	if !ok {
		return 0, 0, nil, false
	}
	rcode = int(m[3] & 0x0f)
	qd, an := int(binary.BigEndian.Uint16(m[4:])), int(binary.BigEndian.Uint16(m[6:]))
	off := 12
	for range qd {
		if off = skipDNSName(m, off); off < 0 || off+4 > len(m) {
			return id, rcode, nil, true
		}
		off += 4
	}
	for range an {
		if off = skipDNSName(m, off); off < 0 || off+10 > len(m) {
			break
		}
		typ, class := binary.BigEndian.Uint16(m[off:]), binary.BigEndian.Uint16(m[off+2:])
		size := int(binary.BigEndian.Uint16(m[off+8:]))
		off += 10
		if off+size > len(m) {
			break
		}
		data := m[off : off+size]
		off += size
		if class != dnsClassIN || typ != qt {
			continue
		}
		if (typ == dnsTypeA && size == net.IPv4len) || (typ == dnsTypeAAAA && size == net.IPv6len) {
			addrs = append(addrs, net.IP(data).String())
		}
	}
	return id, rcode, addrs, true
}

// skipDNSName returns the offset after the (possibly compressed) name at
// off, or -1.
func skipDNSName(m []byte, off int) int {
	for off < len(m) {
		l := int(m[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xc0 == 0xc0:
			if off+2 > len(m) {
				return -1
			}
			return off + 2
		}
		off += 1 + l
	}
	return -1
}
