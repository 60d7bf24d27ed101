package proxy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"

	"ngxsockify/nginxconf"
)

// loadKeyPair loads one ssl_certificate and its key. An encrypted key is
// decrypted with each of ssl_password_file's passwords in turn, in the two
// PEM forms OpenSSL writes:
//
//   - PKCS#8 "ENCRYPTED PRIVATE KEY" (OpenSSL 3's default, `openssl genrsa
//     -aes128`, `openssl pkcs8 -topk8`) with PBES2: PBKDF2 with
//     HMAC-SHA1/224/256/384/512 and AES-128/192/256-CBC or DES-EDE3-CBC;
//   - the legacy form with "Proc-Type: 4,ENCRYPTED" and "DEK-Info" headers
//     (`-traditional`, OpenSSL 1.x): DES, 3DES, AES-CBC.
//
// PKCS#12 PBE schemes (`openssl pkcs8 -v1 ...`) and scrypt are refused.
func loadKeyPair(cp nginxconf.CertPair, passwords []string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(cp.Cert)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf(`cannot load certificate "%s": %w`, cp.Cert, err)
	}
	keyPEM, err := os.ReadFile(cp.Key)
	if err == nil {
		keyPEM, err = decryptKeyPEM(keyPEM, passwords)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf(`cannot load certificate key "%s": %w`, cp.Key, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf(`cannot load certificate "%s": %w`, cp.Cert, err)
	}
	return c, nil
}

// decryptKeyPEM returns data with its private key decrypted; data as it is
// when the key is not encrypted.
func decryptKeyPEM(data []byte, passwords []string) ([]byte, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return data, nil
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		var der []byte
		typ := b.Type
		switch {
		case typ == "ENCRYPTED PRIVATE KEY":
			der, typ = decryptPKCS8(b.Bytes, passwords), "PRIVATE KEY"
		case x509.IsEncryptedPEMBlock(b): //nolint:staticcheck // the legacy form is still written by OpenSSL 1.x and -traditional
			der = decryptLegacyPEM(b, passwords)
		default:
			return data, nil
		}
		if der == nil {
			if len(passwords) == 0 {
				return nil, errors.New("PEM_read_bio_PrivateKey() failed (the key is encrypted and no ssl_password_file is given)")
			}
			return nil, errors.New("PEM_read_bio_PrivateKey() failed (bad decrypt)")
		}
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
	}
}

// parsesAsKey reports whether der is a private key in one of the DER forms
// PEM files hold.
func parsesAsKey(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}

// decryptLegacyPEM tries each password on a key with DEK-Info; nil when
// none fits. A wrong password can pass the padding check, so the result
// must also parse.
func decryptLegacyPEM(b *pem.Block, passwords []string) []byte {
	for _, pw := range passwords {
		der, err := x509.DecryptPEMBlock(b, []byte(pw)) //nolint:staticcheck // see loadKeyPair
		if err == nil && parsesAsKey(der) {
			return der
		}
	}
	return nil
}

// PKCS#5 v2 (RFC 8018) structures and identifiers.
type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Cipher pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// pbkdf2PRFs are PBKDF2's HMAC hashes by OID (default HMAC-SHA1).
var pbkdf2PRFs = map[string]func() hash.Hash{
	"1.2.840.113549.2.7":  sha1.New,
	"1.2.840.113549.2.8":  sha256.New224,
	"1.2.840.113549.2.9":  sha256.New,
	"1.2.840.113549.2.10": sha512.New384,
	"1.2.840.113549.2.11": sha512.New,
}

// pbes2Ciphers are the CBC ciphers by OID, with their key length.
var pbes2Ciphers = map[string]struct {
	keyLen int
	block  func([]byte) (cipher.Block, error)
}{
	"2.16.840.1.101.3.4.1.2":  {16, aes.NewCipher},
	"2.16.840.1.101.3.4.1.22": {24, aes.NewCipher},
	"2.16.840.1.101.3.4.1.42": {32, aes.NewCipher},
	"1.2.840.113549.3.7":      {24, des.NewTripleDESCipher},
}

// decryptPKCS8 decrypts a PBES2 EncryptedPrivateKeyInfo with the first
// password that gives a key; nil when none does or the scheme is not one
// of those above.
func decryptPKCS8(der []byte, passwords []string) []byte {
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var kdf pbkdf2Params
	var iv []byte
	if _, err := asn1.Unmarshal(der, &info); err != nil || !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil
	}
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil || !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil
	}
	if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil
	}
	if _, err := asn1.Unmarshal(params.Cipher.Parameters.FullBytes, &iv); err != nil {
		return nil
	}
	prf := sha1.New
	if len(kdf.PRF.Algorithm) > 0 {
		var ok bool
		if prf, ok = pbkdf2PRFs[kdf.PRF.Algorithm.String()]; !ok {
			return nil
		}
	}
	c, ok := pbes2Ciphers[params.Cipher.Algorithm.String()]
	if !ok || len(info.Data) == 0 {
		return nil
	}
	for _, pw := range passwords {
		key, err := pbkdf2.Key(prf, pw, kdf.Salt, kdf.Iterations, c.keyLen)
		if err != nil {
			return nil
		}
		block, err := c.block(key)
		if err != nil || len(iv) != block.BlockSize() || len(info.Data)%block.BlockSize() != 0 {
			return nil
		}
		plain := make([]byte, len(info.Data))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
		if plain = unpad(plain, block.BlockSize()); plain != nil && parsesAsKey(plain) {
			return plain
		}
	}
	return nil
}

// unpad removes PKCS#7 padding; nil when it is not valid.
func unpad(b []byte, size int) []byte {
	if len(b) == 0 {
		return nil
	}
	n := int(b[len(b)-1])
	if n == 0 || n > size || n > len(b) {
		return nil
	}
	for _, p := range b[len(b)-n:] {
		if int(p) != n {
			return nil
		}
	}
	return b[:len(b)-n]
}
