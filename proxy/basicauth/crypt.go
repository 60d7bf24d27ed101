package basicauth

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Verify checks password against one stored hash (see the package doc for
// the schemes).
func Verify(stored, password string) Result {
	var computed string
	switch {
	case strings.HasPrefix(stored, "{PLAIN}"):
		computed = "{PLAIN}" + password
	case strings.HasPrefix(stored, "{SHA}"):
		sum := sha1.Sum([]byte(password))
		computed = "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
	case strings.HasPrefix(stored, "{SSHA}"):
		raw, err := base64.StdEncoding.DecodeString(stored[len("{SSHA}"):])
		if err != nil || len(raw) < sha1.Size {
			return Mismatch
		}
		h := sha1.New()
		h.Write([]byte(password))
		h.Write(raw[sha1.Size:])
		return match(string(h.Sum(nil)), string(raw[:sha1.Size]))
	case strings.HasPrefix(stored, "$apr1$"):
		computed = md5Crypt(password, stored, "$apr1$")
	case strings.HasPrefix(stored, "$1$"):
		computed = md5Crypt(password, stored, "$1$")
	case strings.HasPrefix(stored, "$5$"):
		computed = shaCrypt(password, stored, "$5$", sha256.New, sha256Order)
	case strings.HasPrefix(stored, "$6$"):
		computed = shaCrypt(password, stored, "$6$", sha512.New, sha512Order)
	case strings.HasPrefix(stored, "$2a$"), strings.HasPrefix(stored, "$2b$"), strings.HasPrefix(stored, "$2y$"), strings.HasPrefix(stored, "$2x$"):
		if bcrypt.CompareHashAndPassword([]byte(stored), []byte(password)) == nil {
			return OK
		}
		return Mismatch
	case strings.HasPrefix(stored, "$y$"), strings.HasPrefix(stored, "$sha1$"),
		strings.HasPrefix(stored, "$md5$"), strings.HasPrefix(stored, "$md5,"):
		return verifyLibrary(stored, password)
	case strings.HasPrefix(stored, "$7$"):
		computed = scrypt7(stored, password)
	case strings.HasPrefix(stored, "$3$"):
		computed = ntHash(password)
	case strings.HasPrefix(stored, "$gy$"):
		return Unsupported
	case strings.HasPrefix(stored, "$"):
		return Mismatch
	case strings.HasPrefix(stored, "_"):
		computed = bsdiCrypt(password, stored)
	case isDESHash(stored):
		computed = desCrypt(password, stored[:2])
	default:
		return Mismatch
	}
	return match(computed, stored)
}

func match(a, b string) Result {
	if len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 {
		return OK
	}
	return Mismatch
}

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// to64 appends n characters of crypt's base64 for the low bits of v.
func to64(b []byte, v uint32, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, itoa64[v&0x3f])
		v >>= 6
	}
	return b
}

// cryptSalt returns the salt of stored after magic: up to max bytes, ending
// at "$".
func cryptSalt(stored, magic string, max int) string {
	s := strings.TrimPrefix(stored, magic)
	if i := strings.IndexByte(s, '$'); i >= 0 {
		s = s[:i]
	}
	if len(s) > max {
		s = s[:max]
	}
	return s
}

// md5Crypt is Poul-Henning Kamp's MD5-based crypt; Apache's "$apr1$" is the
// same with another magic string.
func md5Crypt(password, stored, magic string) string {
	pw := []byte(password)
	salt := []byte(cryptSalt(stored, magic, 8))

	alt := md5.New()
	alt.Write(pw)
	alt.Write(salt)
	alt.Write(pw)
	final := alt.Sum(nil)

	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write(salt)
	for n := len(pw); n > 0; n -= 16 {
		ctx.Write(final[:min(n, 16)])
	}
	for n := len(pw); n != 0; n >>= 1 {
		if n&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final = ctx.Sum(nil)

	c := md5.New()
	for i := 0; i < 1000; i++ {
		c.Reset()
		if i&1 != 0 {
			c.Write(pw)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write(salt)
		}
		if i%7 != 0 {
			c.Write(pw)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pw)
		}
		final = c.Sum(final[:0])
	}

	out := []byte(magic + string(salt) + "$")
	f := func(a, b, c int) uint32 { return uint32(final[a])<<16 | uint32(final[b])<<8 | uint32(final[c]) }
	out = to64(out, f(0, 6, 12), 4)
	out = to64(out, f(1, 7, 13), 4)
	out = to64(out, f(2, 8, 14), 4)
	out = to64(out, f(3, 9, 15), 4)
	out = to64(out, f(4, 10, 5), 4)
	out = to64(out, uint32(final[11]), 2)
	return string(out)
}

// Byte orders of the final encoding of SHA-crypt: triplets, the last one
// shorter.
var (
	sha256Order = [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}, {-1, 31, 30}}
	sha512Order = [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10},
		{53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16},
		{59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}, {-1, -1, 63}}
)

const (
	shaRoundsDefault = 5000
	shaRoundsMin     = 1000
	shaRoundsMax     = 999999999
)

// shaCrypt is Ulrich Drepper's SHA-256/SHA-512 crypt.
func shaCrypt(password, stored, magic string, newHash func() hash.Hash, order [][3]int) string {
	rest := strings.TrimPrefix(stored, magic)
	rounds, custom := shaRoundsDefault, false
	if strings.HasPrefix(rest, "rounds=") {
		end := strings.IndexByte(rest, '$')
		if end < 0 {
			return ""
		}
		n, err := strconv.ParseUint(rest[len("rounds="):end], 10, 64)
		if err != nil {
			return ""
		}
		rounds, custom = int(min(max(n, shaRoundsMin), shaRoundsMax)), true
		rest = rest[end+1:]
	}
	salt := []byte(cryptSalt(rest, "", 16))
	pw := []byte(password)

	b := newHash()
	b.Write(pw)
	b.Write(salt)
	b.Write(pw)
	sumB := b.Sum(nil)
	size := len(sumB)

	a := newHash()
	a.Write(pw)
	a.Write(salt)
	n := len(pw)
	for ; n > size; n -= size {
		a.Write(sumB)
	}
	a.Write(sumB[:n])
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(pw)
		}
	}
	sumA := a.Sum(nil)

	dp := newHash()
	for range len(pw) {
		dp.Write(pw)
	}
	p := repeatTo(dp.Sum(nil), len(pw))

	ds := newHash()
	for range 16 + int(sumA[0]) {
		ds.Write(salt)
	}
	s := repeatTo(ds.Sum(nil), len(salt))

	c := sumA
	h := newHash()
	for i := 0; i < rounds; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	out := []byte(magic)
	if custom {
		out = append(out, "rounds="+strconv.Itoa(rounds)+"$"...)
	}
	out = append(out, salt...)
	out = append(out, '$')
	at := func(i int) uint32 {
		if i < 0 {
			return 0
		}
		return uint32(c[i])
	}
	for k, t := range order {
		w := at(t[0])<<16 | at(t[1])<<8 | at(t[2])
		switch {
		case k < len(order)-1:
			out = to64(out, w, 4)
		case t[1] < 0:
			out = to64(out, w, 2)
		default:
			out = to64(out, w, 3)
		}
	}
	return string(out)
}

// repeatTo repeats b to length n.
func repeatTo(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}
