package basicauth

import (
	"encoding/hex"
	"runtime"
	"strings"

	"github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/scrypt"
	"github.com/go-crypt/crypt/algorithm/sha1crypt"
	"golang.org/x/crypto/md4" //nolint:staticcheck // NT hashes are MD4 by definition
	xscrypt "golang.org/x/crypto/scrypt"
)

// xcryptDecoder knows the libxcrypt schemes that github.com/go-crypt/crypt
// implements: yescrypt ($y$), sha1crypt ($sha1$) and Sun MD5 ($md5$,
// $md5,rounds=N$).
var xcryptDecoder = func() *crypt.Decoder {
	d := crypt.NewDecoder()
	for _, register := range []func(*crypt.Decoder) error{
		func(d *crypt.Decoder) error { return scrypt.RegisterDecoderYescrypt(d) },
		func(d *crypt.Decoder) error { return sha1crypt.RegisterDecoder(d) },
		func(d *crypt.Decoder) error { return md5crypt.RegisterDecoderSun(d) },
	} {
		if err := register(d); err != nil {
			panic("basicauth: " + err.Error())
		}
	}
	return d
}()

// memoryHardSlots bounds how many yescrypt and scrypt computations run at
// once. Each takes what its hash asks for (16 MiB and a quarter of a
// second for Debian's default yescrypt, 1 GiB and seconds at mkpasswd's
// highest cost); nginx computes one at a time per worker, so concurrent
// requests cannot multiply that. This keeps the same bound: one per CPU.
var memoryHardSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// memoryHard runs f in one of memoryHardSlots.
func memoryHard[T any](f func() T) T {
	memoryHardSlots <- struct{}{}
	defer func() { <-memoryHardSlots }()
	return f()
}

// verifyLibrary checks a yescrypt, sha1crypt or Sun MD5 hash. A hash the
// library cannot decode (parameters outside what it implements, or a
// malformed hash) is Unsupported: libxcrypt may still accept it.
func verifyLibrary(stored, password string) Result {
	digest, err := xcryptDecoder.Decode(stored)
	if err != nil {
		return Unsupported
	}
	match := digest.Match
	if strings.HasPrefix(stored, "$y$") {
		match = func(p string) bool { return memoryHard(func() bool { return digest.Match(p) }) }
	}
	if match(password) {
		return OK
	}
	return Mismatch
}

// ntHash is libxcrypt's NT scheme: "$3$$" and the hex MD4 of the password
// widened byte by byte to 16 bits (not decoded as UTF-8, as libxcrypt does).
func ntHash(password string) string {
	wide := make([]byte, 0, 2*len(password))
	for i := 0; i < len(password); i++ {
		wide = append(wide, password[i], 0)
	}
	h := md4.New()
	h.Write(wide)
	return "$3$$" + hex.EncodeToString(h.Sum(nil))
}

// scrypt7 is libxcrypt's scrypt scheme: "$7$", log2(N) in one character,
// r and p in five each (30 bits, least significant character first), the
// salt as text up to "$", then the 32-byte key in crypt's base64. It
// returns "" for a malformed setting.
func scrypt7(stored, password string) string {
	rest := strings.TrimPrefix(stored, "$7$")
	if len(rest) < 11 {
		return ""
	}
	nLog2 := a64(rest[0])
	r, okR := decode30(rest[1:6])
	p, okP := decode30(rest[6:11])
	if nLog2 < 1 || nLog2 > 62 || !okR || !okP || r == 0 || p == 0 {
		return ""
	}
	salt := rest[11:]
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	// Bounded as libxcrypt bounds them (its N*r*128 memory must fit), so a
	// hostile file cannot make one request allocate without limit.
	if uint64(r)*uint64(p) >= 1<<30 || nLog2 > 30 || uint64(128)*uint64(r)<<nLog2 > 1<<32 {
		return ""
	}
	var key []byte
	err := memoryHard(func() (err error) {
		key, err = xscrypt.Key([]byte(password), []byte(salt), 1<<nLog2, int(r), int(p), 32)
		return err
	})
	if err != nil {
		return ""
	}
	out := []byte(stored[:len(stored)-len(rest)+11+len(salt)] + "$")
	for i := 0; i < len(key); i += 3 {
		var v uint32
		n := min(3, len(key)-i)
		for j := 0; j < n; j++ {
			v |= uint32(key[i+j]) << (8 * j)
		}
		out = to64(out, v, (n*8+5)/6)
	}
	return string(out)
}

// decode30 reads five crypt base64 characters, least significant first.
func decode30(s string) (uint32, bool) {
	var v uint32
	for i := 0; i < 5; i++ {
		c := a64(s[i])
		if c < 0 {
			return 0, false
		}
		v |= uint32(c) << (6 * i)
	}
	return v, true
}
