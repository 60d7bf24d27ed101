package proxy

import (
	"net/http"
	"testing"
)

// TestHostOf: the one-pass path for plain names gives what the general one
// gives.
func TestHostOf(t *testing.T) {
	for host, want := range map[string]string{
		"vnc.example.com": "vnc.example.com", "VNC.Example.COM": "vnc.example.com",
		"example.com.": "example.com", "example.com:8080": "example.com", "Example.com.:80": "example.com",
		"127.0.0.1": "127.0.0.1", "127.0.0.1:6080": "127.0.0.1", "[::1]": "[::1]", "[::FFFF:1.2.3.4]:80": "[::ffff:1.2.3.4]", "[::1]:443": "[::1]", "ÉCOLE.fr": "école.fr", "": "",
	} {
		if got := hostOf(&http.Request{Host: host}); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", host, got, want)
		}
	}
}
