package nginxconf

import (
	"crypto/tls"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestParseCipherList compares the suites a cipher string selects with
// what this machine's OpenSSL selects (`openssl ciphers`), within the
// suites both have; the order is not compared (crypto/tls offers its own).
func TestParseCipherList(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	known := map[string]bool{}
	for _, c := range cipherSuites {
		if !c.tls13 {
			known[c.name] = true
		}
	}
	for _, s := range []string{
		"DEFAULT", "ALL", "HIGH", "ECDHE-RSA-AES256-SHA", "AES128-SHA:ECDHE-RSA-AES256-SHA",
		"ECDHE+AESGCM:!AES256", "kRSA", "aECDSA", "ECDHE:!SHA1", "HIGH:!aNULL:!MD5",
		"AESGCM:-ECDSA", "AES:!AES:AES128", "CHACHA20", "SHA256", "TLSv1.2:!kRSA", "SSLv3",
		"NOSUCH:AES256-SHA", "ECDHE-ECDSA-AES128-GCM-SHA256 AES256-GCM-SHA384", "AES128+kRSA",
		"ALL:+kRSA:@STRENGTH", "TLSv1", "TLSv1.0", "SHA384", "SHA1", "AES256", "ECDSA", "EECDH", "aRSA", "RSA",
		"COMPLEMENTOFALL", "ECDHE-RSA-AES256-SHA,AES128-SHA", "-ALL:AES128-SHA", "!ALL:AES128-SHA",
	} {
		ids, ok := ParseCipherList(s)
		var got []string
		for _, id := range ids {
			got = append(got, cipherName(id))
		}
		out, err := exec.Command(openssl, "ciphers", "--", s+":@SECLEVEL=0").Output()
		var want []string
		if err == nil {
			for _, n := range strings.Split(strings.TrimSpace(string(out)), ":") {
				if known[n] {
					want = append(want, n)
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || ok != (len(want) > 0) {
			t.Errorf("%q: got %v (%v), openssl %v", s, got, ok, want)
		}
	}
	if _, ok := ParseCipherList("FOO:!ALL"); ok {
		t.Error("FOO:!ALL matched")
	}
}

func cipherName(id uint16) string {
	for _, c := range cipherSuites {
		if c.id == id {
			return c.name
		}
	}
	return tls.CipherSuiteName(id)
}

func TestCipherDescription(t *testing.T) {
	for id, want := range map[uint16]string{
		0xc030: "ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=AESGCM(256) Mac=AEAD",
		0xc014: "ECDHE-RSA-AES256-SHA TLSv1 Kx=ECDH Au=RSA Enc=AES(256) Mac=SHA1",
		0x1302: "TLS_AES_256_GCM_SHA384 TLSv1.3 Kx=any Au=any Enc=AESGCM(256) Mac=AEAD",
		0x0005: "",
	} {
		if got := CipherDescription(id); got != want {
			t.Errorf("%#04x: %q, want %q", id, got, want)
		}
	}
}

// The table's suites are crypto/tls's.
func TestCipherSuitesKnownToGo(t *testing.T) {
	goIDs := map[uint16]bool{}
	for _, c := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		goIDs[c.ID] = true
	}
	for _, c := range cipherSuites {
		if !goIDs[c.id] {
			t.Errorf("%s (%#04x) is not a crypto/tls suite", c.name, c.id)
		}
	}
}

// TestParseCurveList: OpenSSL's names and aliases, any case, in the
// list's order; auto is crypto/tls's defaults; an unknown or empty name
// (or one crypto/tls lacks) refuses the list, naming it.
func TestParseCurveList(t *testing.T) {
	ids, _, ok := ParseCurveList("secp384r1:P-256:x25519:prime256v1")
	if want := []tls.CurveID{tls.CurveP384, tls.CurveP256, tls.X25519, tls.CurveP256}; !ok || !slices.Equal(ids, want) {
		t.Errorf("got %v %v, want %v", ids, ok, want)
	}
	if ids, _, ok := ParseCurveList("auto"); !ok || ids != nil {
		t.Errorf("auto: %v %v", ids, ok)
	}
	for list, bad := range map[string]string{"prime256v1:X448": "X448", "foo": "foo", "prime256v1:": ""} {
		if _, got, ok := ParseCurveList(list); ok || got != bad {
			t.Errorf("%q: ok %v, bad %q, want %q", list, ok, got, bad)
		}
	}
}
