package nginxconf

import (
	"crypto/tls"
	"slices"
	"strings"

	"ngxsockify/nginxconf/vars"
)

// OpenSSL's names for TLS versions and cipher suites, as the directives
// that take them (ssl_protocols, lua_ssl_protocols, lua_ssl_ciphers) and
// nginx's debug lines write them, limited to what crypto/tls can do.

// ProtocolRange turns an ssl_protocols-style list into crypto/tls's
// version range (a gap in the list is not kept: TLSv1 TLSv1.2 allows TLS
// 1.1 too). No list: TLS 1.2 only, as measured on Debian 12's nginx 1.22.
// Its default, "TLSv1 TLSv1.1 TLSv1.2" (lua_ssl_protocols': "SSLv3 TLSv1
// TLSv1.1 TLSv1.2"), has no TLS 1.3 (nginx 1.23.4 added it), and OpenSSL
// 3's default security level refuses TLS 1.0 and 1.1. A list that names
// them gets them: OpenSSL does so at security level 0.
func ProtocolRange(names []string) (min, max uint16) {
	if len(names) == 0 {
		return tls.VersionTLS12, tls.VersionTLS12
	}
	for _, n := range names {
		v, ok := tlsVersions[strings.ToLower(n)]
		if !ok {
			continue // SSLv2, SSLv3: not offered
		}
		if min == 0 || v < min {
			min = v
		}
		if v > max {
			max = v
		}
	}
	if min == 0 {
		// only SSLv2/SSLv3: no handshake can succeed
		return tls.VersionTLS13, tls.VersionTLS12
	}
	return min, max
}

var tlsVersions = map[string]uint16{"tlsv1": tls.VersionTLS10, "tlsv1.1": tls.VersionTLS11,
	"tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13}

// protocolName reports whether n is a protocol name nginx's bitmask
// directives take (case-insensitive, as ngx_conf_set_bitmask_slot).
func protocolName(n string) bool {
	_, ok := tlsVersions[strings.ToLower(n)]
	return ok || strings.EqualFold(n, "SSLv2") || strings.EqualFold(n, "SSLv3")
}

// cipherSuite is one suite as OpenSSL 3 describes it (SSL_CIPHER_description).
type cipherSuite struct {
	id               uint16
	name, version    string // OpenSSL's name; the oldest protocol it runs on
	kx, au, enc, mac string
	keyBits          int // the cipher's strength, for @STRENGTH
	tls13            bool
}

// cipherSuites are the suites both OpenSSL 3 (Debian 12's build) and
// crypto/tls have, in the order of OpenSSL's ALL. Go has no CBC suites
// with SHA-384 nor AES256-SHA256; OpenSSL here has no RC4 or 3DES.
var cipherSuites = []cipherSuite{
	{id: 0x1302, name: "TLS_AES_256_GCM_SHA384", version: "TLSv1.3", kx: "any", au: "any", enc: "AESGCM(256)", mac: "AEAD", keyBits: 256, tls13: true},
	{id: 0x1303, name: "TLS_CHACHA20_POLY1305_SHA256", version: "TLSv1.3", kx: "any", au: "any", enc: "CHACHA20/POLY1305(256)", mac: "AEAD", keyBits: 256, tls13: true},
	{id: 0x1301, name: "TLS_AES_128_GCM_SHA256", version: "TLSv1.3", kx: "any", au: "any", enc: "AESGCM(128)", mac: "AEAD", keyBits: 128, tls13: true},
	{id: 0xc02c, name: "ECDHE-ECDSA-AES256-GCM-SHA384", version: "TLSv1.2", kx: "ECDH", au: "ECDSA", enc: "AESGCM(256)", mac: "AEAD", keyBits: 256},
	{id: 0xc030, name: "ECDHE-RSA-AES256-GCM-SHA384", version: "TLSv1.2", kx: "ECDH", au: "RSA", enc: "AESGCM(256)", mac: "AEAD", keyBits: 256},
	{id: 0xcca9, name: "ECDHE-ECDSA-CHACHA20-POLY1305", version: "TLSv1.2", kx: "ECDH", au: "ECDSA", enc: "CHACHA20/POLY1305(256)", mac: "AEAD", keyBits: 256},
	{id: 0xcca8, name: "ECDHE-RSA-CHACHA20-POLY1305", version: "TLSv1.2", kx: "ECDH", au: "RSA", enc: "CHACHA20/POLY1305(256)", mac: "AEAD", keyBits: 256},
	{id: 0xc02b, name: "ECDHE-ECDSA-AES128-GCM-SHA256", version: "TLSv1.2", kx: "ECDH", au: "ECDSA", enc: "AESGCM(128)", mac: "AEAD", keyBits: 128},
	{id: 0xc02f, name: "ECDHE-RSA-AES128-GCM-SHA256", version: "TLSv1.2", kx: "ECDH", au: "RSA", enc: "AESGCM(128)", mac: "AEAD", keyBits: 128},
	{id: 0xc023, name: "ECDHE-ECDSA-AES128-SHA256", version: "TLSv1.2", kx: "ECDH", au: "ECDSA", enc: "AES(128)", mac: "SHA256", keyBits: 128},
	{id: 0xc027, name: "ECDHE-RSA-AES128-SHA256", version: "TLSv1.2", kx: "ECDH", au: "RSA", enc: "AES(128)", mac: "SHA256", keyBits: 128},
	{id: 0xc00a, name: "ECDHE-ECDSA-AES256-SHA", version: "TLSv1", kx: "ECDH", au: "ECDSA", enc: "AES(256)", mac: "SHA1", keyBits: 256},
	{id: 0xc014, name: "ECDHE-RSA-AES256-SHA", version: "TLSv1", kx: "ECDH", au: "RSA", enc: "AES(256)", mac: "SHA1", keyBits: 256},
	{id: 0xc009, name: "ECDHE-ECDSA-AES128-SHA", version: "TLSv1", kx: "ECDH", au: "ECDSA", enc: "AES(128)", mac: "SHA1", keyBits: 128},
	{id: 0xc013, name: "ECDHE-RSA-AES128-SHA", version: "TLSv1", kx: "ECDH", au: "RSA", enc: "AES(128)", mac: "SHA1", keyBits: 128},
	{id: 0x009d, name: "AES256-GCM-SHA384", version: "TLSv1.2", kx: "RSA", au: "RSA", enc: "AESGCM(256)", mac: "AEAD", keyBits: 256},
	{id: 0x009c, name: "AES128-GCM-SHA256", version: "TLSv1.2", kx: "RSA", au: "RSA", enc: "AESGCM(128)", mac: "AEAD", keyBits: 128},
	{id: 0x003c, name: "AES128-SHA256", version: "TLSv1.2", kx: "RSA", au: "RSA", enc: "AES(128)", mac: "SHA256", keyBits: 128},
	{id: 0x0035, name: "AES256-SHA", version: "SSLv3", kx: "RSA", au: "RSA", enc: "AES(256)", mac: "SHA1", keyBits: 256},
	{id: 0x002f, name: "AES128-SHA", version: "SSLv3", kx: "RSA", au: "RSA", enc: "AES(128)", mac: "SHA1", keyBits: 128},
}

// CipherDescription is OpenSSL's SSL_CIPHER_description of suite id with
// its runs of spaces made one, as nginx's "SSL: TLSv1.2, cipher: ..."
// debug line writes it; "" for a suite not in the table.
func CipherDescription(id uint16) string {
	for _, c := range cipherSuites {
		if c.id == id {
			return c.name + " " + c.version + " Kx=" + c.kx + " Au=" + c.au + " Enc=" + c.enc + " Mac=" + c.mac
		}
	}
	return ""
}

// matches reports whether c is in the set an OpenSSL cipher-string word
// names (one alias or suite name; '+' joins words that must all hold).
func (c *cipherSuite) matches(word string) bool {
	for _, w := range strings.Split(word, "+") {
		if !c.matchesOne(w) {
			return false
		}
	}
	return true
}

func (c *cipherSuite) matchesOne(w string) bool {
	aes := strings.HasPrefix(c.enc, "AES")
	switch w {
	case "ALL", "DEFAULT", "HIGH", "COMPLEMENTOFALL":
		return w != "COMPLEMENTOFALL"
	case "kRSA", "RSA":
		return c.kx == "RSA"
	case "aRSA":
		return c.au == "RSA"
	case "kECDHE", "kEECDH", "ECDHE", "EECDH":
		return c.kx == "ECDH"
	case "aECDSA", "ECDSA":
		return c.au == "ECDSA"
	case "AES":
		return aes
	case "AES128", "AES256":
		return aes && strings.HasSuffix(c.enc, "("+w[3:]+")")
	case "AESGCM":
		return strings.HasPrefix(c.enc, "AESGCM")
	case "CHACHA20":
		return strings.HasPrefix(c.enc, "CHACHA20")
	case "SHA1", "SHA":
		return c.mac == "SHA1"
	case "SHA256", "SHA384":
		return c.mac == w
	case "TLSv1.2", "SSLv3":
		return c.version == w
	case "TLSv1", "TLSv1.0":
		return c.version == "TLSv1"
	}
	return c.name == w
}

// ParseCipherList is SSL_CTX_set_cipher_list for crypto/tls: the suites
// (TLS 1.2 and older; TLS 1.3's are not chosen by it, in OpenSSL either)
// an OpenSSL cipher string selects, in its order. Words are separated by
// ':', ',' or spaces; "!w" removes w's suites for good, "-w" removes
// them, "+w" moves them to the end, "@STRENGTH" sorts by key length, other
// "@" commands are read and ignored, as are unknown names. ok is false
// when nothing is left ("no cipher match"). crypto/tls offers the suites
// in its own order, so only the set the string gives counts there.
func ParseCipherList(s string) (ids []uint16, ok bool) {
	var list []*cipherSuite
	killed := map[uint16]bool{}
	for _, word := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		op := byte(0)
		if strings.ContainsRune("!-+", rune(word[0])) {
			op, word = word[0], word[1:]
		}
		if word == "@STRENGTH" {
			slices.SortStableFunc(list, func(a, b *cipherSuite) int { return b.keyBits - a.keyBits })
			continue
		}
		if strings.HasPrefix(word, "@") || word == "" {
			continue
		}
		var moved []*cipherSuite
		for i := range cipherSuites {
			c := &cipherSuites[i]
			if c.tls13 || !c.matches(word) {
				continue
			}
			at := slices.Index(list, c)
			switch op {
			case 0:
				if at < 0 && !killed[c.id] {
					list = append(list, c)
				}
			case '!', '-':
				if at >= 0 {
					list = slices.Delete(list, at, at+1)
				}
				killed[c.id] = killed[c.id] || op == '!'
			case '+':
				if at >= 0 {
					list = slices.Delete(list, at, at+1)
					moved = append(moved, c)
				}
			}
		}
		list = append(list, moved...)
	}
	for _, c := range list {
		ids = append(ids, c.id)
	}
	return ids, len(ids) > 0
}

// tlsCurves are the groups crypto/tls offers for ssl_ecdh_curve.
var tlsCurves = []tls.CurveID{tls.CurveP256, tls.CurveP384, tls.CurveP521, tls.X25519}

// curveAliases are the other names OpenSSL 3 takes for them.
var curveAliases = map[string]tls.CurveID{"p-256": tls.CurveP256, "secp256r1": tls.CurveP256,
	"p-384": tls.CurveP384, "p-521": tls.CurveP521}

// ParseCurveList is SSL_CTX_set1_curves_list for crypto/tls: the groups
// of a ':'-separated ssl_ecdh_curve list, in its order; nil for "auto"
// (crypto/tls's defaults). ok is false when a name is not one of them,
// bad the first such (OpenSSL refuses the list; X448 and the ffdhe
// groups, which crypto/tls lacks, included).
func ParseCurveList(s string) (ids []tls.CurveID, bad string, ok bool) {
	if s == "auto" {
		return nil, "", true
	}
	for _, name := range strings.Split(s, ":") {
		id, known := curveAliases[strings.ToLower(name)]
		for _, c := range tlsCurves {
			if strings.EqualFold(vars.CurveName(c), name) {
				id, known = c, true
			}
		}
		if !known {
			return nil, name, false
		}
		ids = append(ids, id)
	}
	return ids, "", true
}
