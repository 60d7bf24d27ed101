package luahooks

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// strFormat is string.format with C (LuaJIT) conversions: %g uses C's
// default precision 6, %s formats numbers with %.14g, %d truncates.
func strFormat(L *lua.LState) int {
	f := L.CheckString(1)
	arg := 1
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(f) {
			L.RaiseError("invalid option '%%' to 'format'")
		}
		if f[i] == '%' {
			b.WriteByte('%')
			continue
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			i++
		}
		prec := -1
		if i < len(f) && f[i] == '.' {
			i++
			p := i
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
			}
			prec, _ = strconv.Atoi(f[p:i])
		}
		if i >= len(f) {
			L.RaiseError("invalid option '%%%s' to 'format'", f[start:])
		}
		spec := f[start:i]
		conv := f[i]
		arg++
		switch conv {
		case 'd', 'i':
			n := checkFmtNumber(L, arg)
			b.WriteString(fmt.Sprintf("%"+spec+"d", int64(n)))
		case 'u':
			n := checkFmtNumber(L, arg)
			b.WriteString(fmt.Sprintf("%"+spec+"d", uint64(int64(n))))
		case 'c':
			n := checkFmtNumber(L, arg)
			b.WriteByte(byte(int64(n)))
		case 'x', 'X', 'o':
			n := checkFmtNumber(L, arg)
			b.WriteString(fmt.Sprintf("%"+spec+string(conv), uint64(int64(n))))
		case 'e', 'E', 'f', 'F':
			n := checkFmtNumber(L, arg)
			b.WriteString(fmtSpecial(fmt.Sprintf("%"+spec+string(conv), tieAway(n, conv, prec)), n))
		case 'g', 'G':
			n := checkFmtNumber(L, arg)
			if prec < 0 {
				prec = 6
			}
			var s string
			if math.IsInf(n, 0) || math.IsNaN(n) {
				s = formatNumber(n)
			} else {
				s = cFormatG(n, prec)
			}
			if strings.Contains(spec, "+") && n >= 0 {
				s = "+" + s
			}
			if conv == 'G' {
				s = strings.ToUpper(s)
			}
			b.WriteString(pad(s, spec))
		case 'q':
			b.WriteString(quoteLua(L.CheckString(arg)))
		case 's':
			v := L.CheckAny(arg)
			var s string
			if n, ok := v.(lua.LNumber); ok {
				s = formatNumber(float64(n))
			} else {
				s = L.ToStringMeta(v).String()
			}
			if prec >= 0 && prec < len(s) {
				s = s[:prec]
			}
			b.WriteString(pad(s, spec))
		default:
			L.RaiseError("invalid option '%%%c' to 'format'", conv)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

func fmtSpecial(s string, n float64) string {
	if math.IsInf(n, 0) || math.IsNaN(n) {
		s = strings.ReplaceAll(s, "+Inf", "inf")
		s = strings.ReplaceAll(s, "-Inf", "-inf")
		s = strings.ReplaceAll(s, "NaN", "nan")
	}
	return s
}

// pad applies the width and '-' flag of a C conversion spec.
func pad(s, spec string) string {
	left := strings.Contains(spec, "-")
	w := strings.TrimLeft(spec, "-+ #0")
	if k := strings.IndexByte(w, '.'); k >= 0 {
		w = w[:k]
	}
	width, _ := strconv.Atoi(w)
	if len(s) >= width {
		return s
	}
	if left {
		return s + strings.Repeat(" ", width-len(s))
	}
	return strings.Repeat(" ", width-len(s)) + s
}

func checkFmtNumber(L *lua.LState, n int) float64 {
	v := L.Get(n)
	switch x := v.(type) {
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		if f, ok := parseLuaNumber(string(x)); ok {
			return f
		}
	}
	cArgError(L, n, "format", "number expected, got "+typeName(v))
	return 0
}

func typeName(v lua.LValue) string {
	if v == lua.LNil {
		return "no value"
	}
	return v.Type().String()
}

func quoteLua(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString("\\\n")
		case '\r':
			b.WriteString("\\r")
		case 0:
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				b.WriteString("\\000")
			} else {
				b.WriteString("\\0")
			}
		default:
			if c < 32 || c == 127 {
				if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
					fmt.Fprintf(&b, "\\%03d", c)
				} else {
					fmt.Fprintf(&b, "\\%d", c)
				}
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tieAway nudges n away from zero when it lies exactly halfway at the
// requested precision: LuaJIT rounds such ties away from zero, Go's fmt
// rounds them to even ("%.1f" of 2.25: LuaJIT 2.3, Go 2.2).
func tieAway(n float64, conv byte, prec int) float64 {
	if prec < 0 {
		prec = 6
	}
	if math.IsInf(n, 0) || math.IsNaN(n) || n == 0 || prec > 17 {
		return n
	}
	var long string
	var digits string
	if conv == 'f' || conv == 'F' {
		long = strconv.FormatFloat(math.Abs(n), 'f', prec+7, 64)
		i := strings.IndexByte(long, '.')
		digits = long[i+1:]
		if len(digits) < prec+7 || digits[prec] != '5' || strings.Trim(digits[prec+1:], "0") != "" {
			return n
		}
		return n + math.Copysign(math.Pow(10, -float64(prec+3)), n)
	}
	long = strconv.FormatFloat(math.Abs(n), 'e', prec+7, 64)
	e := strings.IndexByte(long, 'e')
	digits = strings.Replace(long[:e], ".", "", 1)
	if len(digits) < prec+8 || digits[prec+1] != '5' || strings.Trim(digits[prec+2:], "0") != "" {
		return n
	}
	return n + math.Copysign(math.Abs(n)*math.Pow(10, -float64(prec+3)), n)
}
