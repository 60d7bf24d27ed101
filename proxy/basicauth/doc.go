// Package basicauth reads htpasswd files and checks passwords the way
// nginx's auth_basic module does on Debian (nginx 1.22 with libxcrypt).
//
// File format (auth_basic_user_file): one "user:hash[:comment]" per line;
// lines starting with "#" are comments; the user is matched byte for byte
// (spaces included), the hash runs to the next ":" or end of line (a CR
// ends it too); lines without ":" match nobody; the first matching line
// wins.
//
// Hash schemes (Verify):
//
//	{PLAIN}text           plain text
//	{SHA}base64           base64(SHA-1(password))
//	{SSHA}base64          base64(SHA-1(password+salt)+salt)
//	$apr1$salt$hash       Apache MD5 (htpasswd -m, the default)
//	$1$salt$hash          MD5-crypt (openssl passwd -1)
//	$5$[rounds=N$]s$h     SHA-256-crypt (openssl passwd -5)
//	$6$[rounds=N$]s$h     SHA-512-crypt (openssl passwd -6, mkpasswd)
//	$2a$ $2b$ $2y$        bcrypt (htpasswd -B), golang.org/x/crypto/bcrypt
//	13 chars [./0-9A-Za-z] traditional DES crypt (htpasswd -d)
//	_CCCCSSSS + 11 chars  BSDi extended DES (mkpasswd -m bsdicrypt)
//	$y$                   yescrypt (mkpasswd, Debian 12's default), github.com/go-crypt/crypt
//	$sha1$N$salt$h        sha1crypt (NetBSD), github.com/go-crypt/crypt
//	$md5$ $md5,rounds=N$  Sun MD5 (mkpasswd -m sunmd5), github.com/go-crypt/crypt
//	$7$                   scrypt (mkpasswd -m scrypt), golang.org/x/crypto/scrypt
//	$3$$hex               NT hash (mkpasswd -m nt), golang.org/x/crypto/md4
//
// A hash without a scheme prefix that is not DES (for example a bare plain
// text password), or with a "$" prefix libxcrypt does not know, never
// matches, as with nginx, which hands it to crypt(3). gost-yescrypt ($gy$:
// no maintained Go module implements its Streebog hash) and yescrypt
// parameters beyond go-crypt's range give Unsupported; the auth_basic
// module logs "unsupported hash format" and answers 401, nginx's answer for
// a hash its crypt() cannot compute.
//
// Everything here is safe for concurrent use; a File is immutable.
package basicauth
