package vars

import (
	"strings"
	"testing"
)

// TestAppendLogEscaped checks the table-driven escaping against nginx's
// rules written byte by byte (ngx_http_log_escape and
// ngx_escape_json): every byte alone, between plain text, and runs.
func TestAppendLogEscaped(t *testing.T) {
	ref := func(s string, esc LogEscape) string {
		const hex = "0123456789ABCDEF"
		var b []byte
		for j := 0; j < len(s); j++ {
			c := s[j]
			switch {
			case esc == LogEscapeJSON && (c == '"' || c == '\\'):
				b = append(b, '\\', c)
			case esc == LogEscapeJSON && c < 0x20:
				if k := strings.IndexByte("\n\r\t\b\f", c); k >= 0 {
					b = append(b, '\\', "nrtbf"[k])
				} else {
					b = append(b, `\u00`...)
					b = append(b, hex[c>>4], hex[c&15])
				}
			case esc == LogEscapeDefault && (c == '"' || c == '\\' || c < 0x20 || c > 0x7e):
				b = append(b, `\x`...)
				b = append(b, hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
		}
		return string(b)
	}
	var inputs []string
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}), "ab"+string([]byte{byte(c)})+"cd")
	}
	inputs = append(inputs, "", "Mozilla/5.0 (X11; Linux x86_64)", `"\"\\`, "a\x00\x1f\x7f\x80\xffz", "\xe2\x82\xac", "tail\n")
	for _, esc := range []LogEscape{LogEscapeDefault, LogEscapeJSON} {
		for _, in := range inputs {
			got := string(appendLogEscaped([]byte("x"), in, esc))
			if want := "x" + ref(in, esc); got != want {
				t.Errorf("escape %d of %q: %q, want %q", esc, in, got, want)
			}
		}
	}
}
