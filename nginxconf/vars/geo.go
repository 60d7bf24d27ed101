package vars

import (
	"net"
	"net/netip"
	"strings"
)

// Geo is the table of a `geo` block (ngx_http_geo_module): a value per
// network (the longest prefix that holds the address wins) or, with
// `ranges`, per IPv4 range (the range defined last wins), else the default.
// Values are plain strings, as in nginx.
type Geo struct {
	source *Template // nil: the client's address
	ranges bool
	def    string
	nets   map[netip.Prefix]string
	bits   []int      // the prefix lengths present, longest first
	rngs   []geoRange // in definition order
	proxy  []netip.Prefix
	// recursive is proxy_recursive: the last address of X-Forwarded-For
	// that is not a proxy's, instead of the last one.
	recursive bool
}

type geoRange struct {
	lo, hi uint32
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
// meaningless"); the prefix returned is masked.
func ParseGeoNet(s string) (p netip.Prefix, lowBits, ok bool) {
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

// AddRange sets the value of the range lo..hi; a range defined again
// keeps its place and returns the value it replaces. A range may lie
// inside one defined before (it wins there), not across or around one:
// overlaps names that one then, as nginx's "range ... overlaps ..." error.
func (geo *Geo) AddRange(lo, hi uint32, v string) (old string, had bool, overlaps string) {
	for i := range geo.rngs {
		g := &geo.rngs[i]
		switch {
		case g.lo == lo && g.hi == hi:
			old, g.value = g.value, v
			return old, true, ""
		case hi < g.lo || lo > g.hi, lo >= g.lo && hi <= g.hi:
		default:
			return "", false, v4String(g.lo) + "-" + v4String(g.hi)
		}
	}
	geo.rngs = append(geo.rngs, geoRange{lo: lo, hi: hi, value: v})
	return "", false, ""
}

func v4String(n uint32) string {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
}

// DeleteRange removes the range lo..hi (`delete`): only a range defined
// with these very ends; false when there is none.
func (geo *Geo) DeleteRange(lo, hi uint32) bool {
	for i, g := range geo.rngs {
		if g.lo == lo && g.hi == hi {
			geo.rngs = append(geo.rngs[:i], geo.rngs[i+1:]...)
			return true
		}
	}
	return false
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
		for i := len(geo.rngs) - 1; i >= 0; i-- {
			if g := geo.rngs[i]; n >= g.lo && n <= g.hi {
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
		return netip.Addr{}, false
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
