package luahooks

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"

	lua "github.com/yuin/gopher-lua"
)

// Go-native versions of lua-resty-string (Debian's lua-nginx-string), whose
// modules call OpenSSL and nginx through LuaJIT's FFI, which gopher-lua does
// not have. They answer to OpenResty's names (resty.string, resty.sha256,
// ...) and to Debian's (nginx.string, nginx.sha256, ...), with the same API:
//
//	resty.string   to_hex(s), atoi(s)
//	resty.md5, resty.sha1, resty.sha224, resty.sha256, resty.sha384,
//	resty.sha512   new(), obj:update(s), obj:final(), obj:reset()
//	resty.random   bytes(n, strong)
//	resty.aes      cipher(size, mode), hash.md5 .. hash.sha512,
//	               new(key, salt, cipher, hash, rounds[, iv_len, padding]),
//	               obj:encrypt(s), obj:decrypt(s)
//
// resty.aes has the modes ecb, cbc, cfb8, cfb128, ofb and ctr; cipher()
// answers nil for any other (cfb1, gcm).

// restyStringModules are the preload entries: module name suffix -> opener.
func (st *state) restyStringModules() map[string]func() lua.LValue {
	digest := func(h func() hash.Hash) func() lua.LValue {
		return func() lua.LValue { return st.openDigest(h) }
	}
	return map[string]func() lua.LValue{
		"string": st.openRestyString,
		"md5":    digest(md5.New),
		"sha1":   digest(sha1.New),
		"sha224": digest(sha256.New224),
		"sha256": digest(sha256.New),
		"sha384": digest(sha512.New384),
		"sha512": digest(sha512.New),
		"random": st.openRestyRandom,
		"aes":    st.openRestyAES,
	}
}

const restyStringVersion = "0.11"

func (st *state) restyModule(fns map[string]lua.LGFunction) *lua.LTable {
	m := st.funcTable(fns)
	m.RawSetString("_VERSION", lua.LString(restyStringVersion))
	return m
}

// checkLen is the string argument of a function that takes #s: anything
// else raises LuaJIT's length error.
func checkLen(L *lua.LState, n int) string {
	v := L.Get(n)
	s, ok := v.(lua.LString)
	if !ok {
		L.RaiseError("attempt to get length of local 's' (a %s value)", v.Type().String())
	}
	return string(s)
}

func (st *state) openRestyString() lua.LValue {
	return st.restyModule(map[string]lua.LGFunction{
		"to_hex": func(L *lua.LState) int {
			L.Push(lua.LString(hex.EncodeToString([]byte(checkLen(L, 1)))))
			return 1
		},
		// atoi is nginx's ngx_atoi: decimal digits only, -1 for anything
		// else (a sign, an empty string, an overflow).
		"atoi": func(L *lua.LState) int {
			L.Push(lua.LNumber(ngxAtoi(checkLen(L, 1))))
			return 1
		},
	})
}

func ngxAtoi(s string) int64 {
	if s == "" {
		return -1
	}
	const cutoff = (1<<63 - 1) / 10
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		if n >= cutoff && (n > cutoff || int64(c-'0') > (1<<63-1)%10) {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// openDigest is one of the hash modules: new() makes an object whose
// update feeds it, final gives the binary digest, and reset starts over.
func (st *state) openDigest(newHash func() hash.Hash) lua.LValue {
	L := st.L
	m := st.restyModule(nil)
	mt := L.NewTable()
	mt.RawSetString("__index", m)
	state := func(L *lua.LState) hash.Hash {
		obj := L.CheckTable(1)
		ud, ok := obj.RawGetString("_ctx").(*lua.LUserData)
		if !ok {
			L.RaiseError("bad digest object")
		}
		return ud.Value.(hash.Hash)
	}
	L.SetFuncs(m, map[string]lua.LGFunction{
		"new": func(L *lua.LState) int {
			L.Push(newCtxObject(L, mt, newHash()))
			return 1
		},
		"update": func(L *lua.LState) int {
			h := state(L)
			h.Write([]byte(checkLen(L, 2)))
			L.Push(lua.LTrue)
			return 1
		},
		"final": func(L *lua.LState) int {
			L.Push(lua.LString(state(L).Sum(nil)))
			return 1
		},
		"reset": func(L *lua.LState) int {
			state(L).Reset()
			L.Push(lua.LTrue)
			return 1
		},
	})
	return m
}

func (st *state) openRestyRandom() lua.LValue {
	return st.restyModule(map[string]lua.LGFunction{
		// Both kinds come from the system's CSPRNG.
		"bytes": func(L *lua.LState) int {
			n := L.CheckInt(1)
			if n < 0 {
				L.RaiseError("bad argument #1 to 'bytes' (negative length)")
			}
			b := make([]byte, n)
			rand.Read(b)
			L.Push(lua.LString(b))
			return 1
		},
	})
}

// aesHashes are resty.aes's hash table, the digests EVP_BytesToKey can use.
var aesHashes = []struct {
	name string
	new  func() hash.Hash
}{
	{"md5", md5.New}, {"sha1", sha1.New}, {"sha224", sha256.New224},
	{"sha256", sha256.New}, {"sha384", sha512.New384}, {"sha512", sha512.New},
}

// aesCipher is what cipher(size, mode) returns in its method field.
type aesCipher struct {
	size int // key bits
	mode string
}

func (c aesCipher) ivLen() int {
	if c.mode == "ecb" {
		return 0
	}
	return aes.BlockSize
}

func (c aesCipher) padded() bool { return c.mode == "ecb" || c.mode == "cbc" }

func (st *state) openRestyAES() lua.LValue {
	L := st.L
	m := st.restyModule(nil)
	mt := L.NewTable()
	mt.RawSetString("__index", m)
	hashes := L.NewTable()
	for _, h := range aesHashes {
		ud := L.NewUserData()
		ud.Value = h.new
		hashes.RawSetString(h.name, ud)
	}
	m.RawSetString("hash", hashes)
	cipherOf := func(size int, mode string) lua.LValue {
		switch mode {
		case "ecb", "cbc", "cfb8", "cfb128", "ofb", "ctr":
		default:
			return lua.LNil
		}
		if size != 128 && size != 192 && size != 256 {
			return lua.LNil
		}
		t := L.NewTable()
		t.RawSetString("size", lua.LNumber(size))
		t.RawSetString("cipher", lua.LString(mode))
		ud := L.NewUserData()
		ud.Value = aesCipher{size, mode}
		t.RawSetString("method", ud)
		return t
	}
	L.SetFuncs(m, map[string]lua.LGFunction{
		"cipher": func(L *lua.LState) int {
			L.Push(cipherOf(L.OptInt(1, 128), L.OptString(2, "cbc")))
			return 1
		},
		"new": func(L *lua.LState) int {
			key := checkLen(L, 2)
			ci := aesCipher{128, "cbc"}
			if t, ok := L.Get(4).(*lua.LTable); ok {
				if ud, ok := t.RawGetString("method").(*lua.LUserData); ok {
					ci, _ = ud.Value.(aesCipher)
				}
			}
			if ci.size == 0 {
				L.RaiseError("bad cipher")
			}
			keyLen := ci.size / 8
			var k, iv []byte
			switch h := L.Get(5).(type) {
			case *lua.LTable:
				// {iv = 16 bytes, method = function(key) -> key}: the
				// key and iv as given, no derivation.
				ivs, ok := h.RawGetString("iv").(lua.LString)
				if !ok || len(ivs) != aes.BlockSize {
					L.Push(lua.LNil)
					L.Push(lua.LString("bad iv"))
					return 2
				}
				k = []byte(key)
				if fn, ok := h.RawGetString("method").(*lua.LFunction); ok {
					L.Push(fn)
					L.Push(lua.LString(key))
					L.Call(1, 1)
					k = []byte(L.ToString(-1))
					L.Pop(1)
				}
				if len(k) != keyLen {
					L.Push(lua.LNil)
					L.Push(lua.LString("bad key length"))
					return 2
				}
				iv = []byte(ivs)
			default:
				newHash := md5.New
				if ud, ok := h.(*lua.LUserData); ok {
					if f, ok := ud.Value.(func() hash.Hash); ok {
						newHash = f
					}
				}
				var salt []byte
				if s, ok := L.Get(3).(lua.LString); ok {
					if len(s) != 8 {
						L.Push(lua.LNil)
						L.Push(lua.LString("salt must be 8 characters or nil"))
						return 2
					}
					salt = []byte(s)
				}
				rounds := L.OptInt(6, 1)
				k, iv = bytesToKey(newHash, []byte(key), salt, rounds, keyLen, ci.ivLen())
			}
			if n := L.OptInt(7, aes.BlockSize); ci.ivLen() > 0 && n != aes.BlockSize {
				L.Push(lua.LNil)
				L.Push(lua.LString("bad iv length"))
				return 2
			}
			block, err := aes.NewCipher(k)
			if err != nil {
				L.Push(lua.LNil)
				return 1
			}
			padding := true
			if v := L.Get(8); v != lua.LNil {
				padding = lua.LVAsBool(v)
			}
			L.Push(newCtxObject(L, mt, &aesState{block: block, iv: iv, mode: ci.mode, pad: padding && ci.padded()}))
			return 1
		},
		"encrypt": func(L *lua.LState) int {
			s := aesStateOf(L)
			out, ok := s.crypt([]byte(checkLen(L, 2)), true)
			return pushOrNil(L, out, ok)
		},
		"decrypt": func(L *lua.LState) int {
			s := aesStateOf(L)
			out, ok := s.crypt([]byte(checkLen(L, 2)), false)
			return pushOrNil(L, out, ok)
		},
	})
	return m
}

// newCtxObject is an object of a resty module: a table whose _ctx holds
// the Go state v, with the module's metatable.
func newCtxObject(L *lua.LState, mt *lua.LTable, v any) *lua.LTable {
	obj := L.NewTable()
	ud := L.NewUserData()
	ud.Value = v
	obj.RawSetString("_ctx", ud)
	L.SetMetatable(obj, mt)
	return obj
}

func pushOrNil(L *lua.LState, out []byte, ok bool) int {
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(out))
	return 1
}

func aesStateOf(L *lua.LState) *aesState {
	obj := L.CheckTable(1)
	ud, ok := obj.RawGetString("_ctx").(*lua.LUserData)
	if !ok {
		L.RaiseError("bad aes object")
	}
	return ud.Value.(*aesState)
}

// bytesToKey is OpenSSL's EVP_BytesToKey: D_i = H^rounds(D_{i-1} || data
// || salt), concatenated until the key and the iv are filled.
func bytesToKey(newHash func() hash.Hash, data, salt []byte, rounds, keyLen, ivLen int) (key, iv []byte) {
	var out, prev []byte
	for len(out) < keyLen+ivLen {
		h := newHash()
		h.Write(prev)
		h.Write(data)
		h.Write(salt)
		d := h.Sum(nil)
		for i := 1; i < rounds; i++ {
			h.Reset()
			h.Write(d)
			d = h.Sum(nil)
		}
		out = append(out, d...)
		prev = d
	}
	return out[:keyLen], out[keyLen : keyLen+ivLen]
}

// aesState encrypts and decrypts whole messages, each from the object's
// iv, as the EVP contexts of resty.aes do.
type aesState struct {
	block cipher.Block
	iv    []byte
	mode  string
	pad   bool
}

func (s *aesState) crypt(in []byte, encrypt bool) ([]byte, bool) {
	bs := aes.BlockSize
	if s.pad && encrypt {
		n := bs - len(in)%bs
		in = append(append([]byte(nil), in...), bytes.Repeat([]byte{byte(n)}, n)...)
	}
	if (s.mode == "ecb" || s.mode == "cbc") && len(in)%bs != 0 {
		return nil, false
	}
	out := make([]byte, len(in))
	switch s.mode {
	case "ecb":
		for i := 0; i < len(in); i += bs {
			if encrypt {
				s.block.Encrypt(out[i:i+bs], in[i:i+bs])
			} else {
				s.block.Decrypt(out[i:i+bs], in[i:i+bs])
			}
		}
	case "cbc":
		if encrypt {
			cipher.NewCBCEncrypter(s.block, s.iv).CryptBlocks(out, in)
		} else {
			cipher.NewCBCDecrypter(s.block, s.iv).CryptBlocks(out, in)
		}
	case "cfb128":
		if encrypt {
			cipher.NewCFBEncrypter(s.block, s.iv).XORKeyStream(out, in) //nolint:staticcheck // resty.aes offers CFB
		} else {
			cipher.NewCFBDecrypter(s.block, s.iv).XORKeyStream(out, in) //nolint:staticcheck
		}
	case "cfb8":
		cfb8(s.block, s.iv, out, in, encrypt)
	case "ofb":
		cipher.NewOFB(s.block, s.iv).XORKeyStream(out, in) //nolint:staticcheck // resty.aes offers OFB
	case "ctr":
		cipher.NewCTR(s.block, s.iv).XORKeyStream(out, in)
	}
	if s.pad && !encrypt {
		if len(out) == 0 {
			return nil, false
		}
		n := int(out[len(out)-1])
		if n == 0 || n > bs || n > len(out) || !bytes.Equal(out[len(out)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
			return nil, false
		}
		out = out[:len(out)-n]
	}
	return out, true
}

// cfb8 is CFB with an 8-bit shift register: one block encryption per byte.
func cfb8(b cipher.Block, iv, out, in []byte, encrypt bool) {
	reg := append([]byte(nil), iv...)
	ks := make([]byte, len(reg))
	for i, c := range in {
		b.Encrypt(ks, reg)
		out[i] = c ^ ks[0]
		ct := out[i]
		if !encrypt {
			ct = c
		}
		copy(reg, reg[1:])
		reg[len(reg)-1] = ct
	}
}

// openTableNew and openTableClear are LuaJIT's table.new and table.clear.
func openTableNew(L *lua.LState) int {
	L.Push(L.NewFunction(func(L *lua.LState) int {
		L.Push(L.CreateTable(L.OptInt(1, 0), L.OptInt(2, 0)))
		return 1
	}))
	return 1
}

func openTableClear(L *lua.LState) int {
	L.Push(L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		var keys []lua.LValue
		t.ForEach(func(k, _ lua.LValue) { keys = append(keys, k) })
		for _, k := range keys {
			t.RawSet(k, lua.LNil)
		}
		return 0
	}))
	return 1
}

// openRestyCore is resty.core: OpenResty loads it to put the FFI versions
// of ngx.* in place. Ours are built in, so it only answers require.
func (st *state) openRestyCore() lua.LValue {
	m := st.L.NewTable()
	m.RawSetString("version", lua.LString("0.1.25")) // Debian 12's lua-resty-core
	return m
}

// restyCoreParts are the modules resty.core requires (lua-resty-core
// 0.1.25's resty/core.lua, http subsystem): lua-nginx-module loads
// resty.core when it creates the VM, so they are in package.loaded from
// the start and require "resty.core.regex" answers at once. Ours only
// answer require, as resty.core does: each is a table with the version
// field they have (_VERSION in misc, ctx and worker; base's FFI helpers
// are not there).
var restyCoreParts = []string{"var", "worker", "regex", "shdict", "time", "hash", "uri",
	"exit", "base64", "request", "response", "phase", "ndk", "socket", "coroutine",
	"param", "misc", "ctx", "base"}

func (st *state) openRestyCorePart(name string) lua.LValue {
	m := st.L.NewTable()
	field := "version"
	if name == "misc" || name == "ctx" || name == "worker" {
		field = "_VERSION"
	}
	m.RawSetString(field, lua.LString("0.1.25"))
	return m
}
