package basicauth

import "strings"

// Traditional crypt(3): DES with the salt perturbing the expansion table,
// 25 encryptions of a zero block under a key made of the password's first
// eight characters. Written from FIPS 46-3's tables; crypto/des cannot be
// used because the salt changes the E table.

var (
	desIP = [64]byte{58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
		62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
		57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
		61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7}
	desFP = [64]byte{40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
		38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
		36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
		34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25}
	desE = [48]byte{32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
		16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1}
	desP = [32]byte{16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
		2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25}
	desPC1 = [56]byte{57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
		10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
		63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
		14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4}
	desPC2 = [48]byte{14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
		23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
		41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
		44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32}
	desShifts = [16]byte{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}
	desS      = [8][64]byte{
		{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
			0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
			4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
			15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
		{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
			3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
			0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
			13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
		{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
			13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
			13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
			1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
		{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
			13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
			10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
			3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
		{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
			14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
			4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
			11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
		{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
			10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
			9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
			4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
		{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
			13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
			1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
			6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
		{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
			1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
			7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
			2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
	}
)

// permute builds a value of len(table) bits whose bit i (from the most
// significant) is bit table[i] (1-based from the most significant of inBits)
// of in.
func permute(in uint64, inBits int, table []byte) uint64 {
	var out uint64
	for _, pos := range table {
		out = out<<1 | (in>>(inBits-int(pos)))&1
	}
	return out
}

// desKeySchedule returns the 16 48-bit round keys of a 64-bit key.
func desKeySchedule(key uint64) [16]uint64 {
	cd := permute(key, 64, desPC1[:])
	c, d := uint32(cd>>28), uint32(cd&0x0fffffff)
	var ks [16]uint64
	for i, s := range desShifts {
		c = (c<<s | c>>(28-s)) & 0x0fffffff
		d = (d<<s | d>>(28-s)) & 0x0fffffff
		ks[i] = permute(uint64(c)<<28|uint64(d), 56, desPC2[:])
	}
	return ks
}

// desEncrypt encrypts one block with round keys ks and expansion table e.
func desEncrypt(block uint64, ks *[16]uint64, e *[48]byte) uint64 {
	lr := permute(block, 64, desIP[:])
	l, r := uint32(lr>>32), uint32(lr)
	for i := 0; i < 16; i++ {
		x := permute(uint64(r), 32, e[:]) ^ ks[i]
		var s uint32
		for j := 0; j < 8; j++ {
			six := byte(x>>(42-6*j)) & 0x3f
			row := six>>4&2 | six&1
			col := six >> 1 & 0xf
			s = s<<4 | uint32(desS[j][row*16+col])
		}
		f := uint32(permute(uint64(s), 32, desP[:]))
		l, r = r, l^f
	}
	return permute(uint64(r)<<32|uint64(l), 64, desFP[:])
}

// isDESHash reports whether s looks like a traditional crypt(3) result.
func isDESHash(s string) bool {
	if len(s) != 13 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if a64(s[i]) < 0 {
			return false
		}
	}
	return true
}

func a64(c byte) int {
	switch {
	case c >= '.' && c <= '9':
		return int(c - '.')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 12
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 38
	}
	return -1
}

// desCrypt computes traditional crypt(3) of password with a two-character
// salt.
func desCrypt(password, salt string) string {
	key, _ := desKeyBlock(password)
	e := saltedE(uint32(max(a64(salt[0]), 0)) | uint32(max(a64(salt[1]), 0))<<6)
	ks := desKeySchedule(key)
	var block uint64
	for i := 0; i < 25; i++ {
		block = desEncrypt(block, &ks, &e)
	}
	return string(appendDESBlock([]byte(salt[:2]), block))
}

// bsdiCrypt computes BSDi extended DES crypt ("_" + four characters of
// iteration count + four of salt, both 24 bits, least significant
// character first): every character of the password counts, folded in
// eight at a time by encrypting the key with itself. It returns "" for a
// malformed setting.
func bsdiCrypt(password, setting string) string {
	if len(setting) < 9 || setting[0] != '_' {
		return ""
	}
	var count, salt uint32
	for i := 0; i < 4; i++ {
		c, s := a64(setting[1+i]), a64(setting[5+i])
		if c < 0 || s < 0 {
			return ""
		}
		count |= uint32(c) << (6 * i)
		salt |= uint32(s) << (6 * i)
	}
	if count == 0 {
		return ""
	}
	key, rest := desKeyBlock(password)
	for rest != "" {
		ks := desKeySchedule(key)
		key = desEncrypt(key, &ks, &desE)
		var next uint64
		next, rest = desKeyBlock(rest)
		key ^= next
	}
	e := saltedE(salt)
	ks := desKeySchedule(key)
	var block uint64
	for i := uint32(0); i < count; i++ {
		block = desEncrypt(block, &ks, &e)
	}
	return string(appendDESBlock([]byte(setting[:9]), block))
}

// desKeyBlock makes a DES key of the first eight characters of s, each
// shifted left by one (a C string: s ends at its first NUL), and returns
// the characters left after them.
func desKeyBlock(s string) (key uint64, rest string) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	for i := 0; i < 8; i++ {
		var c byte
		if i < len(s) {
			c = s[i]
		}
		key = key<<8 | uint64(c<<1)
	}
	if len(s) > 8 {
		return key, s[8:]
	}
	return key, ""
}

// saltedE is the expansion table with the outputs k and k+24 swapped for
// every salt bit k that is set (12 bits for traditional crypt, 24 for
// BSDi's).
func saltedE(salt uint32) [48]byte {
	e := desE
	for k := 0; k < 24; k++ {
		if salt>>k&1 != 0 {
			e[k], e[k+24] = e[k+24], e[k]
		}
	}
	return e
}

// appendDESBlock appends the 64-bit result as eleven crypt base64
// characters, most significant bits first.
func appendDESBlock(out []byte, block uint64) []byte {
	for i := 0; i < 11; i++ {
		shift := 58 - 6*i // bits 64 and 65 are zero padding
		var v uint64
		if shift >= 0 {
			v = block >> shift
		} else {
			v = block << -shift
		}
		out = append(out, itoa64[v&0x3f])
	}
	return out
}
