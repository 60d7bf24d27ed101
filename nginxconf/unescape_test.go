package nginxconf

import "testing"

func TestUnescapeWord(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, raw, want string }{
		{"plain", `abc`, "abc"},
		{"double quote", `a\"b`, `a"b`},
		{"single quote", `a\'b`, `a'b`},
		{"backslash", `a\\b`, `a\b`},
		{"tab cr lf", `\t\r\n`, "\t\r\n"},
		{"other escapes stay", `a\ b\qc\$d`, `a\ b\qc\$d`},
		{"double backslash then n", `\\n`, `\n`},
		{"trailing backslash", `a\`, `a\`},
	}
	for _, tt := range tests {
		if got := unescapeWord([]byte(tt.raw)); got != tt.want {
			t.Errorf("%s: unescapeWord(%q) = %q, want %q", tt.name, tt.raw, got, tt.want)
		}
	}
}
