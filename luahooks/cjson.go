package luahooks

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// cjsonEmptyArray is cjson.empty_array: encodes as [].
var cjsonEmptyArray = &lua.LUserData{}

// cjsonConfig is the per-module configuration (cjson and cjson.safe each
// have their own, like separate cjson.new() instances).
type cjsonConfig struct {
	emptyTableAsObject bool
	sparseRatio        int
	sparseSafe         int
	sparseConvert      bool
	maxDepth           int
	decodeMaxDepth     int
	escapeSlash        bool
	arrayMT            *lua.LTable
	emptyArrayMT       *lua.LTable
}

type cjsonError string

func (st *state) openCjson(safe bool) *lua.LTable {
	L := st.L
	cfg := &cjsonConfig{emptyTableAsObject: true, sparseRatio: 2, sparseSafe: 10, maxDepth: 1000,
		decodeMaxDepth: 1000, escapeSlash: true}
	m := L.NewTable()
	cfg.arrayMT = L.NewTable()
	cfg.emptyArrayMT = L.NewTable()
	wrap := func(name string, fn func(L *lua.LState) (lua.LValue, error)) lua.LGFunction {
		return func(L *lua.LState) int {
			v, err := fn(L)
			if err != nil {
				if safe {
					L.Push(lua.LNil)
					L.Push(lua.LString(err.Error()))
					return 2
				}
				// lua-cjson is C: luaL_error from a C function adds no position.
				L.Error(lua.LString(err.Error()), 0)
			}
			L.Push(v)
			return 1
		}
	}
	L.SetFuncs(m, map[string]lua.LGFunction{
		"encode": wrap("encode", func(L *lua.LState) (lua.LValue, error) {
			if L.GetTop() != 1 {
				return nil, fmt.Errorf("bad argument #1 to 'encode' (expected 1 argument)")
			}
			var b strings.Builder
			if err := cfg.encode(&b, L.Get(1), 0); err != nil {
				return nil, err
			}
			return lua.LString(b.String()), nil
		}),
		"decode": wrap("decode", func(L *lua.LState) (lua.LValue, error) {
			s, ok := L.Get(1).(lua.LString)
			if !ok {
				return nil, fmt.Errorf("bad argument #1 to 'decode' (string expected, got %s)", typeName(L.Get(1)))
			}
			d := &jsonDecoder{L: L, s: string(s), cfg: cfg}
			return d.decodeAll()
		}),
		"encode_empty_table_as_object": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				v := L.Get(1)
				if s, ok := v.(lua.LString); ok {
					cfg.emptyTableAsObject = s == "on"
				} else {
					cfg.emptyTableAsObject = lua.LVAsBool(v)
				}
			}
			L.Push(lua.LBool(cfg.emptyTableAsObject))
			return 1
		},
		"encode_sparse_array": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				cfg.sparseConvert = lua.LVAsBool(L.Get(1))
			}
			if L.GetTop() >= 2 {
				cfg.sparseRatio = L.CheckInt(2)
			}
			if L.GetTop() >= 3 {
				cfg.sparseSafe = L.CheckInt(3)
			}
			L.Push(lua.LBool(cfg.sparseConvert))
			L.Push(lua.LNumber(cfg.sparseRatio))
			L.Push(lua.LNumber(cfg.sparseSafe))
			return 3
		},
		"encode_max_depth": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				cfg.maxDepth = L.CheckInt(1)
			}
			L.Push(lua.LNumber(cfg.maxDepth))
			return 1
		},
		"decode_max_depth": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				cfg.decodeMaxDepth = L.CheckInt(1)
			}
			L.Push(lua.LNumber(cfg.decodeMaxDepth))
			return 1
		},
		"encode_escape_forward_slash": func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				cfg.escapeSlash = lua.LVAsBool(L.Get(1))
			}
			L.Push(lua.LBool(cfg.escapeSlash))
			return 1
		},
		"encode_number_precision": func(L *lua.LState) int { L.Push(lua.LNumber(14)); return 1 },
		"encode_keep_buffer":      func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"encode_invalid_numbers":  func(L *lua.LState) int { L.Push(lua.LFalse); return 1 },
		"decode_invalid_numbers":  func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"decode_array_with_array_mt": func(L *lua.LState) int {
			return 0
		},
		"new": func(L *lua.LState) int { L.Push(st.openCjson(safe)); return 1 },
	})
	m.RawSetString("null", luaNull)
	// Debian's lua-cjson 2.1.0 (the oracle) has no empty_array, array_mt
	// or empty_array_mt (OpenResty's fork adds them).
	m.RawSetString("_NAME", lua.LString("cjson"))
	m.RawSetString("_VERSION", lua.LString("2.1.0.10"))
	return m
}

func jsonNumber(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("Cannot serialise number: must not be NaN or Inf")
	}
	return formatNumber(f), nil
}

func (cfg *cjsonConfig) encodeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			if cfg.escapeSlash {
				b.WriteString(`\/`)
			} else {
				b.WriteByte('/')
			}
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

func (cfg *cjsonConfig) encode(b *strings.Builder, v lua.LValue, depth int) error {
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case lua.LNumber:
		s, err := jsonNumber(float64(x))
		if err != nil {
			return err
		}
		b.WriteString(s)
	case lua.LString:
		cfg.encodeString(b, string(x))
	case *lua.LUserData:
		switch x {
		case luaNull:
			b.WriteString("null")
		case cjsonEmptyArray:
			b.WriteString("[]")
		default:
			return fmt.Errorf("Cannot serialise userdata: type not supported")
		}
	case *lua.LTable:
		depth++
		if depth > cfg.maxDepth {
			return fmt.Errorf("Cannot serialise, excessive nesting (%d)", depth)
		}
		return cfg.encodeTable(b, x, depth)
	default:
		return fmt.Errorf("Cannot serialise %s: type not supported", v.Type())
	}
	return nil
}

func (cfg *cjsonConfig) encodeTable(b *strings.Builder, t *lua.LTable, depth int) error {
	mt, _ := t.Metatable.(*lua.LTable)
	// Array detection as lua_array_length: every key a positive integer.
	max, items := 0, 0
	isArray := true
	t.ForEach(func(k, _ lua.LValue) {
		if !isArray {
			return
		}
		n, ok := k.(lua.LNumber)
		if ok && float64(n) >= 1 && float64(n) == math.Floor(float64(n)) {
			if int(n) > max {
				max = int(n)
			}
			items++
			return
		}
		isArray = false
	})
	if isArray && items == 0 && mt != nil && (mt == cfg.arrayMT || mt == cfg.emptyArrayMT) {
		b.WriteString("[]")
		return nil
	}
	if isArray && max > 0 {
		if max > cfg.sparseSafe && max > items*cfg.sparseRatio && cfg.sparseRatio > 0 {
			if !cfg.sparseConvert {
				return fmt.Errorf("Cannot serialise table: excessively sparse array")
			}
			isArray = false
		}
	}
	if isArray && (max > 0 || !cfg.emptyTableAsObject) {
		b.WriteByte('[')
		for i := 1; i <= max; i++ {
			if i > 1 {
				b.WriteByte(',')
			}
			if err := cfg.encode(b, t.RawGetInt(i), depth); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	}
	b.WriteByte('{')
	first := true
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		switch kk := k.(type) {
		case lua.LString:
			cfg.encodeString(b, string(kk))
		case lua.LNumber:
			s, e := jsonNumber(float64(kk))
			if e != nil {
				err = e
				return
			}
			b.WriteByte('"')
			b.WriteString(s)
			b.WriteByte('"')
		default:
			err = fmt.Errorf("Cannot serialise %s: table key must be a number or string", k.Type())
			return
		}
		b.WriteByte(':')
		err = cfg.encode(b, v, depth)
	})
	if err != nil {
		return err
	}
	b.WriteByte('}')
	return nil
}

type jsonDecoder struct {
	L     *lua.LState
	s     string
	i     int
	cfg   *cjsonConfig
	depth int
}

func (d *jsonDecoder) errf(expected string) error {
	tok := d.tokenName()
	return fmt.Errorf("Expected %s but found %s at character %d", expected, tok, d.i+1)
}

// tokenName names the token at the cursor like lua-cjson does.
func (d *jsonDecoder) tokenName() string {
	if d.i >= len(d.s) {
		return "T_END"
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return "T_OBJ_BEGIN"
	case c == '}':
		return "T_OBJ_END"
	case c == '[':
		return "T_ARR_BEGIN"
	case c == ']':
		return "T_ARR_END"
	case c == ',':
		return "T_COMMA"
	case c == ':':
		return "T_COLON"
	case c == '"':
		return "T_STRING"
	case c == '-' || c >= '0' && c <= '9':
		return "T_NUMBER"
	case strings.HasPrefix(d.s[d.i:], "true"), strings.HasPrefix(d.s[d.i:], "false"):
		return "T_BOOLEAN"
	case strings.HasPrefix(d.s[d.i:], "null"):
		return "T_NULL"
	}
	return "invalid token"
}

func (d *jsonDecoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) decodeAll() (lua.LValue, error) {
	if len(d.s) == 0 {
		return nil, fmt.Errorf("Expected value but found T_END at character 1")
	}
	d.ws()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.i < len(d.s) {
		return nil, d.errf("the end")
	}
	return v, nil
}

func (d *jsonDecoder) value() (lua.LValue, error) {
	if d.i >= len(d.s) {
		return nil, d.errf("value")
	}
	c := d.s[d.i]
	switch {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return lua.LString(s), nil
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return lua.LTrue, nil
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return lua.LFalse, nil
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
		return luaNull, nil
	}
	return nil, d.errf("value")
}

func (d *jsonDecoder) enter() error {
	d.depth++
	if d.depth > d.cfg.decodeMaxDepth {
		return fmt.Errorf("Found too many nested data structures (%d) at character %d", d.depth, d.i+1)
	}
	return nil
}

func (d *jsonDecoder) object() (lua.LValue, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++
	t := d.L.NewTable()
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return t, nil
	}
	for {
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.errf("object key string")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.errf("colon")
		}
		d.i++
		d.ws()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		t.RawSetString(k, v)
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			d.depth--
			return t, nil
		}
		return nil, d.errf("comma or object end")
	}
}

func (d *jsonDecoder) array() (lua.LValue, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++
	t := d.L.NewTable()
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return t, nil
	}
	for n := 1; ; n++ {
		d.ws()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		t.RawSetInt(n, v)
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			d.depth--
			return t, nil
		}
		return nil, d.errf("comma or array end")
	}
}

func (d *jsonDecoder) number() (lua.LValue, error) {
	start := d.i
	j := d.i
	for j < len(d.s) && strings.IndexByte("+-0123456789.eExXabcdefABCDEFinINfFtTyY", d.s[j]) >= 0 {
		j++
	}
	f, ok := parseLuaNumber(d.s[start:j])
	if !ok {
		return nil, d.errf("value")
	}
	d.i = j
	return lua.LNumber(f), nil
}

func (d *jsonDecoder) str() (string, error) {
	start := d.i
	d.i++
	var b strings.Builder
	for {
		if d.i >= len(d.s) {
			d.i = start
			return "", fmt.Errorf("Expected value but found unexpected end of string at character %d", len(d.s)+1)
		}
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return b.String(), nil
		case c == '\\':
			if d.i+1 >= len(d.s) {
				return "", fmt.Errorf("Expected value but found invalid escape code at character %d", start+1)
			}
			e := d.s[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", fmt.Errorf("Expected value but found invalid unicode escape code at character %d", start+1)
				}
				if utf16.IsSurrogate(r) {
					if d.i+1 < len(d.s) && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
						d.i += 2
						r2, ok := d.hex4()
						if !ok {
							return "", fmt.Errorf("Expected value but found invalid unicode escape code at character %d", start+1)
						}
						r = utf16.DecodeRune(r, r2)
					}
					if r == utf8.RuneError {
						return "", fmt.Errorf("Expected value but found invalid unicode escape code at character %d", start+1)
					}
				}
				b.WriteRune(r)
			default:
				return "", fmt.Errorf("Expected value but found invalid escape code at character %d", start+1)
			}
		default:
			if c < 0x20 {
				return "", fmt.Errorf("Expected value but found invalid token at character %d", start+1)
			}
			b.WriteByte(c)
			d.i++
		}
	}
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	v, err := strconv.ParseUint(d.s[d.i:d.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(v), true
}
