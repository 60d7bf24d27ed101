package vars

import (
	"fmt"
	"math"
)

// Split is the table of a split_clients block: the hash of its source
// string picks a part by percentage (ngx_http_split_clients_module).
type Split struct {
	source *Template
	parts  []splitPart
}

type splitPart struct {
	// bound: the part takes hashes below it (its percentage in hundredths
	// until Finish); 0 is `*` (every hash)
	bound uint32
	value string
}

// NewSplit compiles a split_clients block's source template.
func NewSplit(g *Registry, source string) (*Split, error) {
	t, err := g.Compile(source)
	if err != nil {
		return nil, err
	}
	return &Split{source: t}, nil
}

// Add adds a part: percent is "*" or a percentage such as "51.2%" (at most
// two decimals, more than 0). Errors are nginx's words.
func (s *Split) Add(percent, value string) error {
	var p uint32 // 0: `*`
	if percent != "*" {
		n, ok := hundredths(percent)
		if !ok || n == 0 || n == 0xffffffff { // 0xffffffff: nginx's NGX_ERROR as a uint32
			return fmt.Errorf(`invalid percent value "%s"`, percent)
		}
		p = n
	}
	s.parts = append(s.parts, splitPart{bound: p, value: value})
	return nil
}

// Finish turns the parts' percentages into hash bounds, once all are
// added, as nginx does at the block's end: `*` takes every hash left and
// counts as the whole rest; the others take cumulative shares of 2^32-1.
func (s *Split) Finish() error {
	var sum, last uint64
	for i := range s.parts {
		p := &s.parts[i]
		if p.bound == 0 {
			sum = 10000
		} else {
			sum += uint64(p.bound)
		}
		if sum > 10000 {
			return fmt.Errorf("percent total is greater than 100%%")
		}
		if p.bound != 0 {
			last += uint64(p.bound) * 0xffffffff / 10000
			p.bound = uint32(last)
		}
	}
	return nil
}

// hundredths parses "51.2%" as 5120, as nginx's ngx_atofp(.., 2) does
// before the "%", and keeps the low 32 bits as nginx's part does.
func hundredths(s string) (uint32, bool) {
	if len(s) < 2 || s[len(s)-1] != '%' {
		return 0, false
	}
	s = s[:len(s)-1]
	const cutoff = math.MaxInt64 / 10
	var v uint64
	point, dot := 2, false
	for i := 0; i < len(s); i++ {
		if point == 0 {
			return 0, false
		}
		c := s[i]
		if c == '.' {
			if dot {
				return 0, false
			}
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > cutoff || v == cutoff && uint64(c-'0') > math.MaxInt64%10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if dot {
			point--
		}
	}
	for ; point > 0; point-- {
		if v > cutoff {
			return 0, false
		}
		v *= 10
	}
	return uint32(v), true
}

// Value is the part r's source string hashes to ("" when the parts leave
// its hash out).
func (s *Split) Value(r *Request) string {
	h := murmurHash2(s.source.Eval(r))
	for _, p := range s.parts {
		if h < p.bound || p.bound == 0 {
			return p.value
		}
	}
	return ""
}

// murmurHash2 is nginx's ngx_murmur_hash2 (MurmurHash2, seeded with the
// length).
func murmurHash2(data string) uint32 {
	const m = 0x5bd1e995
	h := uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
