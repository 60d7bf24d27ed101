package basicauth

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
)

// Result is the outcome of a password check.
type Result int

const (
	// OK: the user exists and the password matches.
	OK Result = iota
	// NoUser: no line of the file names the user (nginx logs
	// `user "x" was not found in "file"`).
	NoUser
	// Mismatch: the password does not match (nginx logs
	// `user "x": password mismatch`).
	Mismatch
	// Unsupported: the hash uses a scheme or parameters this package
	// cannot compute (gost-yescrypt, yescrypt beyond go-crypt's range);
	// nginx on Debian may have checked it.
	Unsupported
)

// String describes the result.
func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case NoUser:
		return "no such user"
	case Mismatch:
		return "password mismatch"
	}
	return "unsupported hash format"
}

// Entry is one user line of an htpasswd file.
type Entry struct {
	User string
	Hash string
}

// File is a parsed htpasswd file.
type File struct {
	Entries []Entry
}

// Load reads and parses the file at path. Its error is the *os.PathError
// from opening it (nginx answers 403 when the file does not exist, 500 for
// other errors, and logs `open() "path" failed (2: No such file or
// directory)`).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data), nil
}

// Parse parses htpasswd data.
func Parse(data []byte) *File {
	f := &File{}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 || line[0] == '#' || line[0] == '\r' {
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		user, rest := line[:i], line[i+1:]
		if j := bytes.IndexAny(rest, ":\r"); j >= 0 {
			rest = rest[:j]
		}
		f.Entries = append(f.Entries, Entry{User: string(user), Hash: string(rest)})
	}
	return f
}

// Lookup returns the hash of the first line naming user.
func (f *File) Lookup(user string) (string, bool) {
	for _, e := range f.Entries {
		if e.User == user {
			return e.Hash, true
		}
	}
	return "", false
}

// Verify checks user and password against the file.
func (f *File) Verify(user, password string) Result {
	h, ok := f.Lookup(user)
	if !ok {
		return NoUser
	}
	return Verify(h, password)
}

// ParseAuthorization parses an Authorization header value like nginx:
// "Basic" in any case followed by one or more spaces, then base64 (padding
// optional, decoding stops at the first "="), then "user:password" with a
// non-empty user. ok is false when nginx would log `no user/password was
// provided for basic authentication` and answer 401.
func ParseAuthorization(h string) (user, password string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := strings.TrimLeft(h[len(prefix):], " ")
	if i := strings.IndexByte(enc, '='); i >= 0 {
		enc = enc[:i]
	}
	if enc == "" {
		return "", "", false
	}
	dec, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	s := string(dec)
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
