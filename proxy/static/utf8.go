package static

// UTF8Incomplete is what DecodeUTF8 returns for a character cut short by
// the end of its input.
const UTF8Incomplete = 0xfffffffe

// utf8Invalid is DecodeUTF8's result for an invalid sequence.
const utf8Invalid = 0xffffffff

// DecodeUTF8 decodes the multibyte character at the start of p as nginx's
// ngx_utf8_decode does, which is laxer than Go's decoder and consumes
// differently: the lead byte fixes the length, a continuation byte only
// has to be >= 0x80 (an ASCII byte ends the sequence as invalid, and is
// consumed with it), overlong forms are invalid, surrogates are not. It
// returns the code point (above utf8.MaxRune when invalid, UTF8Incomplete
// when p ends first) and the bytes consumed.
func DecodeUTF8(p []byte) (uint32, int) {
	u := uint32(p[0])
	var n int
	var valid uint32
	switch {
	case u >= 0xf0:
		u, valid, n = u&0x07, 0xffff, 3
	case u >= 0xe0:
		u, valid, n = u&0x0f, 0x7ff, 2
	case u >= 0xc2:
		u, valid, n = u&0x1f, 0x7f, 1
	default:
		return utf8Invalid, 1
	}
	if len(p)-1 < n {
		return UTF8Incomplete, 0
	}
	i := 1
	for ; n > 0; n-- {
		c := p[i]
		i++
		if c < 0x80 {
			return utf8Invalid, i
		}
		u = u<<6 | uint32(c&0x3f)
	}
	if u > valid {
		return u, i
	}
	return utf8Invalid, i
}

// utf8Length counts characters like nginx's ngx_utf8_length, which gives
// the byte length when s is not valid for DecodeUTF8.
func utf8Length(s string) (n int, ok bool) {
	p := []byte(s)
	for i := 0; i < len(p); n++ {
		if p[i] < 0x80 {
			i++
			continue
		}
		r, size := DecodeUTF8(p[i:])
		if r > 0x10ffff {
			return len(p), false
		}
		i += size
	}
	return n, true
}
