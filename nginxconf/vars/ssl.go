package vars

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TLSConn is what the proxy knows of a TLS connection beyond crypto/tls's
// ConnectionState (Request.HTTP.TLS), for the $ssl_* variables. It belongs
// to the connection's goroutine; the proxy fills it during the handshake
// and before the request's phases run.
type TLSConn struct {
	SessionID     []byte        // $ssl_session_id
	ClientCiphers []uint16      // $ssl_ciphers: the client's list, in its order
	ClientCurves  []tls.CurveID // $ssl_curves: the client's groups, in its order
	// Verify is $ssl_client_verify: "SUCCESS", "FAILED:<reason>" (OpenSSL's
	// words), or "" when no certificate was sent ("NONE").
	Verify string
}

type tlsConnKey struct{}

// WithTLSConn returns ctx carrying c, where the $ssl_* variables of every
// request made with that context find it.
func WithTLSConn(ctx context.Context, c *TLSConn) context.Context {
	return context.WithValue(ctx, tlsConnKey{}, c)
}

func (r *Request) tlsConn() *TLSConn {
	c, _ := r.HTTP.Context().Value(tlsConnKey{}).(*TLSConn)
	return c
}

// clientCert is the client's certificate, nil without one.
func (r *Request) clientCert() *x509.Certificate {
	if r.HTTP.TLS == nil || len(r.HTTP.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.HTTP.TLS.PeerCertificates[0]
}

// sslVar makes a getter that is not found on plain connections.
func sslVar(get func(r *Request, st *tls.ConnectionState) string) builtin {
	return builtin{get: func(r *Request) (string, bool) {
		if r.HTTP.TLS == nil {
			return "", false
		}
		return get(r, r.HTTP.TLS), true
	}}
}

// certVar makes a getter of the client certificate: empty when the client
// sent none, not found on plain connections.
func certVar(get func(c *x509.Certificate) string) builtin {
	return sslVar(func(r *Request, _ *tls.ConnectionState) string {
		if c := r.clientCert(); c != nil {
			return get(c)
		}
		return ""
	})
}

func init() {
	for name, b := range map[string]builtin{
		"ssl_protocol": sslVar(func(_ *Request, st *tls.ConnectionState) string { return ProtocolName(st.Version) }),
		"ssl_cipher":   sslVar(func(_ *Request, st *tls.ConnectionState) string { return CipherName(st.CipherSuite) }),
		"ssl_ciphers": sslVar(func(r *Request, _ *tls.ConnectionState) string {
			c := r.tlsConn()
			if c == nil {
				return ""
			}
			names := make([]string, len(c.ClientCiphers))
			for i, id := range c.ClientCiphers {
				names[i] = CipherName(id)
			}
			return strings.Join(names, ":")
		}),
		"ssl_curve": sslVar(func(_ *Request, st *tls.ConnectionState) string {
			if st.CurveID == 0 {
				return "" // no key exchange by group (RSA key exchange)
			}
			return CurveName(st.CurveID)
		}),
		"ssl_curves": sslVar(func(r *Request, _ *tls.ConnectionState) string {
			c := r.tlsConn()
			if c == nil {
				return ""
			}
			names := make([]string, len(c.ClientCurves))
			for i, id := range c.ClientCurves {
				names[i] = CurveName(id)
			}
			return strings.Join(names, ":")
		}),
		"ssl_session_id": sslVar(func(r *Request, _ *tls.ConnectionState) string {
			if c := r.tlsConn(); c != nil {
				return hex.EncodeToString(c.SessionID)
			}
			return ""
		}),
		"ssl_client_verify": sslVar(func(r *Request, _ *tls.ConnectionState) string {
			if c := r.tlsConn(); c != nil && c.Verify != "" && r.clientCert() != nil {
				return c.Verify
			}
			return "NONE"
		}),
		"ssl_client_s_dn":        certVar(func(c *x509.Certificate) string { return DN(c.RawSubject) }),
		"ssl_client_i_dn":        certVar(func(c *x509.Certificate) string { return DN(c.RawIssuer) }),
		"ssl_client_s_dn_legacy": certVar(func(c *x509.Certificate) string { return legacyDN(c.RawSubject) }),
		"ssl_client_i_dn_legacy": certVar(func(c *x509.Certificate) string { return legacyDN(c.RawIssuer) }),
		"ssl_client_serial": certVar(func(c *x509.Certificate) string {
			b := c.SerialNumber.Bytes()
			if len(b) == 0 {
				b = []byte{0}
			}
			s := strings.ToUpper(hex.EncodeToString(b))
			if c.SerialNumber.Sign() < 0 {
				s = "-" + s
			}
			return s
		}),
		"ssl_client_fingerprint": certVar(func(c *x509.Certificate) string {
			sum := sha1.Sum(c.Raw)
			return hex.EncodeToString(sum[:])
		}),
		"ssl_client_raw_cert": certVar(rawCert),
		// the deprecated form: a tab after every line break but the last
		"ssl_client_cert": certVar(func(c *x509.Certificate) string {
			return strings.ReplaceAll(strings.TrimSuffix(rawCert(c), "\n"), "\n", "\n\t")
		}),
		"ssl_client_escaped_cert": certVar(func(c *x509.Certificate) string { return Escape(rawCert(c), uriComponentEscaped) }),
		"ssl_client_v_start":      certVar(func(c *x509.Certificate) string { return asn1Time(c.NotBefore) }),
		"ssl_client_v_end":        certVar(func(c *x509.Certificate) string { return asn1Time(c.NotAfter) }),
		"ssl_client_v_remain": certVar(func(c *x509.Certificate) string {
			left := time.Until(c.NotAfter)
			if left < 0 {
				return "0"
			}
			return strconv.Itoa(int(left / (24 * time.Hour)))
		}),
	} {
		builtins[name] = b
	}
}

func rawCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// uriComponentEscaped is nginx's NGX_ESCAPE_URI_COMPONENT: all but
// letters, digits and "-._~".
func uriComponentEscaped(c byte) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0)
}

// asn1Time is OpenSSL's ASN1_TIME_print: "Jan  2 15:04:05 2006 GMT".
func asn1Time(t time.Time) string { return t.UTC().Format("Jan _2 15:04:05 2006 GMT") }

// ProtocolName is OpenSSL's name of a TLS version, as $ssl_protocol says it.
func ProtocolName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "unknown"
}

// CurveName is a group's name as nginx's $ssl_curve and $ssl_curves write
// it: OpenSSL's short name, else 0x and its number in hex.
func CurveName(id tls.CurveID) string {
	if n, ok := curveNames[id]; ok {
		return n
	}
	return fmt.Sprintf("0x%04x", uint16(id))
}

// curveNames are OpenSSL 3.0's short names of the groups it has.
var curveNames = map[tls.CurveID]string{tls.CurveP256: "prime256v1", tls.CurveP384: "secp384r1",
	tls.CurveP521: "secp521r1", tls.X25519: "X25519", 30: "X448", 256: "ffdhe2048", 257: "ffdhe3072",
	258: "ffdhe4096", 259: "ffdhe6144", 260: "ffdhe8192"}

// CipherName is OpenSSL's name of a cipher suite ($ssl_cipher,
// $ssl_ciphers); a suite OpenSSL does not name reads 0xXXXX, as nginx
// writes it.
func CipherName(id uint16) string {
	if n, ok := opensslCiphers[id]; ok {
		return n
	}
	return fmt.Sprintf("0x%04x", id)
}

// opensslCiphers are OpenSSL 3's names of the suites clients commonly
// offer; TLS 1.3's are the IANA names.
var opensslCiphers = map[uint16]string{
	0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384", 0x1303: "TLS_CHACHA20_POLY1305_SHA256",
	0x1304: "TLS_AES_128_CCM_SHA256", 0x1305: "TLS_AES_128_CCM_8_SHA256",
	0xc02b: "ECDHE-ECDSA-AES128-GCM-SHA256", 0xc02c: "ECDHE-ECDSA-AES256-GCM-SHA384",
	0xc02f: "ECDHE-RSA-AES128-GCM-SHA256", 0xc030: "ECDHE-RSA-AES256-GCM-SHA384",
	0xcca9: "ECDHE-ECDSA-CHACHA20-POLY1305", 0xcca8: "ECDHE-RSA-CHACHA20-POLY1305", 0xccaa: "DHE-RSA-CHACHA20-POLY1305",
	0xc009: "ECDHE-ECDSA-AES128-SHA", 0xc00a: "ECDHE-ECDSA-AES256-SHA", 0xc013: "ECDHE-RSA-AES128-SHA", 0xc014: "ECDHE-RSA-AES256-SHA",
	0xc023: "ECDHE-ECDSA-AES128-SHA256", 0xc024: "ECDHE-ECDSA-AES256-SHA384",
	0xc027: "ECDHE-RSA-AES128-SHA256", 0xc028: "ECDHE-RSA-AES256-SHA384",
	0xc012: "ECDHE-RSA-DES-CBC3-SHA", 0xc011: "ECDHE-RSA-RC4-SHA", 0xc007: "ECDHE-ECDSA-RC4-SHA",
	0x009e: "DHE-RSA-AES128-GCM-SHA256", 0x009f: "DHE-RSA-AES256-GCM-SHA384",
	0x0067: "DHE-RSA-AES128-SHA256", 0x006b: "DHE-RSA-AES256-SHA256", 0x0033: "DHE-RSA-AES128-SHA", 0x0039: "DHE-RSA-AES256-SHA",
	0x009c: "AES128-GCM-SHA256", 0x009d: "AES256-GCM-SHA384", 0x003c: "AES128-SHA256", 0x003d: "AES256-SHA256",
	0x002f: "AES128-SHA", 0x0035: "AES256-SHA", 0x000a: "DES-CBC3-SHA", 0x0005: "RC4-SHA",
	0xc0ac: "ECDHE-ECDSA-AES128-CCM", 0xc0ad: "ECDHE-ECDSA-AES256-CCM", 0xc0ae: "ECDHE-ECDSA-AES128-CCM8", 0xc0af: "ECDHE-ECDSA-AES256-CCM8",
	0xc09c: "AES128-CCM", 0xc09d: "AES256-CCM", 0xc09e: "DHE-RSA-AES128-CCM", 0xc09f: "DHE-RSA-AES256-CCM",
	0x00ff: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
}

// dnNames are OpenSSL's short names of the attributes of distinguished
// names; others are written as their dotted OID.
var dnNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.5": "serialNumber", "2.5.4.4": "SN", "2.5.4.42": "GN", "2.5.4.12": "title",
	"2.5.4.43": "initials", "2.5.4.44": "generationQualifier", "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
	"2.5.4.17": "postalCode", "2.5.4.41": "name", "2.5.4.15": "businessCategory",
	"1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}

// dnAttrs parses a DER distinguished name into its attributes in order;
// nil when it does not parse.
func dnAttrs(raw []byte) [][]pkix.AttributeTypeAndValue {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return nil
	}
	out := make([][]pkix.AttributeTypeAndValue, len(seq))
	for i, rdn := range seq {
		out[i] = rdn
	}
	return out
}

func attrName(t asn1.ObjectIdentifier) string {
	if n, ok := dnNames[t.String()]; ok {
		return n
	}
	return t.String()
}

func attrValue(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return fmt.Sprint(v)
}

// DN writes a distinguished name as $ssl_client_s_dn does (OpenSSL's
// XN_FLAG_RFC2253): last attribute first, comma-separated, with RFC 2253's
// escapes and bytes outside printable ASCII as \XX.
func DN(raw []byte) string {
	rdns := dnAttrs(raw)
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		for j, a := range rdns[i] {
			switch {
			case j > 0:
				b.WriteByte('+')
			case i < len(rdns)-1:
				b.WriteByte(',')
			}
			b.WriteString(attrName(a.Type) + "=")
			writeRFC2253(&b, attrValue(a.Value))
		}
	}
	return b.String()
}

func writeRFC2253(b *strings.Builder, v string) {
	for k := 0; k < len(v); k++ {
		c := v[k]
		switch {
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(b, "\\%02X", c)
		case strings.IndexByte(`,+"\<>;`, c) >= 0,
			k == 0 && (c == '#' || c == ' '),
			k == len(v)-1 && c == ' ':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}

// legacyDN writes a distinguished name as the _legacy variables do
// (OpenSSL's X509_NAME_oneline): "/CN=x/O=y", first attribute first, bytes
// outside printable ASCII as \xXX.
func legacyDN(raw []byte) string {
	var b strings.Builder
	for _, rdn := range dnAttrs(raw) {
		for _, a := range rdn {
			b.WriteString("/" + attrName(a.Type) + "=")
			v := attrValue(a.Value)
			for k := 0; k < len(v); k++ {
				if c := v[k]; c < 0x20 || c >= 0x7f {
					fmt.Fprintf(&b, "\\x%02X", c)
				} else {
					b.WriteByte(c)
				}
			}
		}
	}
	return b.String()
}
