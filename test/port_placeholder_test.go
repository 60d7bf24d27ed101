package test

import "testing"

func TestPortPlaceholder(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://127.0.0.1:19870/x", "http://127.0.0.1:{{PORT}}/x"},
		{"19870", "{{PORT}}"},
		{"a 19870 b 19870", "a {{PORT}} b {{PORT}}"},
		{"sha: 3fa198701c", "sha: 3fa198701c"},        // inside a digest
		{"x119870 198700", "x119870 198700"},          // longer numbers
		{"port=19870;198701", "port={{PORT}};198701"}, // one of each
	} {
		if got := portPlaceholder(c.in, 19870); got != c.want {
			t.Errorf("portPlaceholder(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
