package vars

import (
	"net"
	"net/netip"
	"strings"
)

// Geo is the table of a `geo` block (ngx_http_geo_module): a value per
// network (the longest prefix that holds the address wins) or, with
// `ranges`, per IPv4 range, else the default. Ranges are kept as nginx
// keeps them: cut at every /16 into pieces that never overlap, a range
// added inside a piece splitting it, so `delete` finds only pieces.
// Values are plain strings, as in nginx.
type Geo struct {
	source *Template // nil: the client's address
	ranges bool
	def    string
	nets   map[netip.Prefix]string
	bits   []int                 // the prefix lengths present, longest first
	rngs   map[uint16][]geoRange // per /16: sorted pieces of it
	proxy  []netip.Prefix
	// recursive is proxy_recursive: the last address of X-Forwarded-For
	// that is not a proxy's, instead of the last one.
	recursive bool
}

type geoRange struct {
	lo, hi uint16 // the piece's ends inside its /16
	value  string
}

// NewGeo starts a geo table whose source is the template text source ("":
// the client's address).
func NewGeo(g *Registry, source string) (*Geo, error) {
	geo := &Geo{nets: map[netip.Prefix]string{}}
	if source != "" {
		t, err := g.Compile(source)
		if err != nil {
			return nil, err
		}
		geo.source = t
	}
	return geo, nil
}

// SetRanges switches the table to ranges (the `ranges` parameter).
func (geo *Geo) SetRanges() { geo.ranges = true }

// Ranges reports whether the table holds ranges.
func (geo *Geo) Ranges() bool { return geo.ranges }

// SetDefault sets the default value; old is the one it replaces.
func (geo *Geo) SetDefault(v string) (old string, had bool) {
	old, had = geo.def, geo.def != ""
	geo.def = v
	return old, had
}

// bcast is 255.255.255.255, which nginx's address parser (ngx_inet_addr)
// cannot tell from its error value: it is no valid network or range end.
var bcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// ParseGeoNet parses a geo network: an address or address/bits. lowBits
// reports bits set past the prefix ("low address bits ... are
// meaningless"); the prefix returned is masked. nginx's geo takes the
// exact text "255.255.255.255" as that one address before its parser
// (ngx_http_geo_cidr), so only other spellings of it are refused.
func ParseGeoNet(s string) (p netip.Prefix, lowBits, ok bool) {
	if s == "255.255.255.255" {
		return netip.PrefixFrom(bcast, 32), false, true
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr() == bcast {
			return netip.Prefix{}, false, false
		}
		m := p.Masked()
		return m, m.Addr() != p.Addr(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a == bcast {
		return netip.Prefix{}, false, false
	}
	return netip.PrefixFrom(a, a.BitLen()), false, true
}

// AddNet sets the value of network p; old is the value it replaces.
func (geo *Geo) AddNet(p netip.Prefix, v string) (old string, had bool) {
	old, had = geo.nets[p]
	geo.nets[p] = v
	if !had {
		geo.addBits(p.Bits() + geoFamilyBits(p.Addr()))
	}
	return old, had
}

// geoFamilyBits keeps IPv4 and IPv6 prefix lengths apart in bits.
func geoFamilyBits(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1000
}

func (geo *Geo) addBits(b int) {
	for i, have := range geo.bits {
		if have == b {
			return
		}
		if have < b {
			geo.bits = append(geo.bits[:i], append([]int{b}, geo.bits[i:]...)...)
			return
		}
	}
	geo.bits = append(geo.bits, b)
}

// DeleteNet removes network p; false when it was not there.
func (geo *Geo) DeleteNet(p netip.Prefix) bool {
	if _, ok := geo.nets[p]; !ok {
		return false
	}
	delete(geo.nets, p)
	return true
}

// ParseGeoRange parses "a.b.c.d-e.f.g.h" (IPv4, lo <= hi).
func ParseGeoRange(s string) (lo, hi uint32, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil || !x.Is4() || !y.Is4() || x == bcast || y == bcast {
		return 0, 0, false
	}
	lo, hi = v4(x), v4(y)
	return lo, hi, lo <= hi
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// AddRange sets the value of the range lo..hi, as nginx's
// ngx_http_geo_add_range: in each /16 it spans, the part is added beside
// the pieces there, or inside one (splitting it; the same ends replace its
// value: olds has the value replaced, once per /16 as nginx warns), else
// it overlaps that piece (overlaps names it, and
// the range is not wholly added: a config error).
func (geo *Geo) AddRange(lo, hi uint32, v string) (olds []string, overlaps string) {
	if geo.rngs == nil {
		geo.rngs = map[uint16][]geoRange{}
	}
	for n := lo; n <= hi; n = (n + 0x10000) &^ 0xffff {
		h, s, e := geoSpan(n, lo, hi)
		a := geo.rngs[h]
		i := len(a)
		placed := false
		for !placed && i > 0 {
			i--
			g := a[i]
			switch {
			case e < g.lo:
				continue
			case s > g.hi:
				a = slicesInsert(a, i+1, geoRange{s, e, v})
			case s == g.lo && e == g.hi:
				olds = append(olds, g.value)
				a[i].value = v
			case s > g.lo && e < g.hi:
				a = slicesInsert(a, i+1, geoRange{s, e, v}, geoRange{e + 1, g.hi, g.value})
				a[i].hi = s - 1
			case s == g.lo && e < g.hi:
				a = slicesInsert(a, i, geoRange{s, e, v})
				a[i+1].lo = e + 1
			case s > g.lo && e == g.hi:
				a = slicesInsert(a, i+1, geoRange{s, e, v})
				a[i].hi = s - 1
			default:
				geo.rngs[h] = a
				return olds, geoPiece(h, g)
			}
			placed = true
		}
		if !placed {
			a = slicesInsert(a, 0, geoRange{s, e, v})
		}
		geo.rngs[h] = a
		if h == 0xffff {
			break
		}
	}
	return olds, ""
}

// geoSpan is the part of lo..hi in the /16 of n: its number and ends.
func geoSpan(n, lo, hi uint32) (h, s, e uint16) {
	h, s, e = uint16(n>>16), 0, 0xffff
	if n == lo {
		s = uint16(n)
	}
	if n|0xffff > hi {
		e = uint16(hi)
	}
	return h, s, e
}

func geoPiece(h uint16, g geoRange) string {
	base := uint32(h) << 16
	return v4String(base|uint32(g.lo)) + "-" + v4String(base|uint32(g.hi))
}

func slicesInsert(a []geoRange, i int, v ...geoRange) []geoRange {
	return append(a[:i], append(v, a[i:]...)...)
}

func v4String(n uint32) string {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
}

// DeleteRange removes the range lo..hi (`delete`), as nginx's
// ngx_http_geo_delete_range: in each /16 it spans, the piece with exactly
// its part's ends. false when some /16 had no such piece.
func (geo *Geo) DeleteRange(lo, hi uint32) bool {
	ok := true
	for n := lo; n <= hi; n = (n + 0x10000) &^ 0xffff {
		h, s, e := geoSpan(n, lo, hi)
		a := geo.rngs[h]
		found := false
		for i, g := range a {
			if g.lo == s && g.hi == e {
				geo.rngs[h] = append(a[:i], a[i+1:]...)
				found = true
				break
			}
		}
		ok = ok && found
		if h == 0xffff {
			break
		}
	}
	return ok
}

// AddProxy trusts p's X-Forwarded-For (the `proxy` parameter).
func (geo *Geo) AddProxy(p netip.Prefix) { geo.proxy = append(geo.proxy, p) }

// SetRecursive is proxy_recursive.
func (geo *Geo) SetRecursive() { geo.recursive = true }

// Value is the table's value for r.
func (geo *Geo) Value(r *Request) string {
	a, ok := geo.addr(r)
	if !ok {
		return geo.def
	}
	if geo.ranges {
		if !a.Is4() {
			return geo.def
		}
		n := v4(a)
		for _, g := range geo.rngs[uint16(n>>16)] {
			if l := uint16(n); l >= g.lo && l <= g.hi {
				return g.value
			}
		}
		return geo.def
	}
	fam := geoFamilyBits(a)
	for _, b := range geo.bits {
		if b-fam < 0 || b-fam > a.BitLen() {
			continue
		}
		if p, err := a.Prefix(b - fam); err == nil {
			if v, ok := geo.nets[p]; ok {
				return v
			}
		}
	}
	return geo.def
}

// addr is the address the table looks up: the source's value, or the
// client's address (through X-Forwarded-For when it is a proxy). An
// invalid source reads as 255.255.255.255, as in nginx.
func (geo *Geo) addr(r *Request) (netip.Addr, bool) {
	if geo.source != nil {
		a, err := netip.ParseAddr(geo.source.Eval(r))
		if err != nil {
			return bcast, true
		}
		return a.Unmap(), true
	}
	a, err := netip.ParseAddr(r.remoteHost())
	if err != nil {
		return bcast, true // a unix-socket client: nginx's INADDR_NONE
	}
	a = a.Unmap()
	if len(geo.proxy) == 0 || !geo.isProxy(a) || r.HTTP == nil {
		return a, true
	}
	var list []string
	for _, v := range r.HTTP.Header.Values("X-Forwarded-For") {
		for _, e := range strings.Split(v, ",") {
			list = append(list, strings.TrimSpace(e))
		}
	}
	for i := len(list) - 1; i >= 0; i-- {
		x, err := netip.ParseAddr(list[i])
		if err != nil {
			if h, _, err2 := net.SplitHostPort(list[i]); err2 == nil {
				x, err = netip.ParseAddr(h)
			}
		}
		if err != nil {
			return a, true
		}
		a = x.Unmap()
		if !geo.recursive || !geo.isProxy(a) {
			break
		}
	}
	return a, true
}

func (geo *Geo) isProxy(a netip.Addr) bool {
	for _, p := range geo.proxy {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
