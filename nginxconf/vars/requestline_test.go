package vars

import "testing"

// TestRequestLineParts: $request and $server_protocol from the head as
// received (nginx's request_line and http_protocol).
func TestRequestLineParts(t *testing.T) {
	for head, want := range map[string][2]string{
		"GET /x HTTP/1.1\r\nHost: a\r\n\r\n":      {"GET /x HTTP/1.1", "HTTP/1.1"},
		"GET  /x   HTTP/1.1\r\n\r\n":              {"GET  /x   HTTP/1.1", "HTTP/1.1"},
		"GET http://h/x?a HTTP/1.01\nHost: a\n\n": {"GET http://h/x?a HTTP/1.01", "HTTP/1.01"},
		"GET /x\r\n": {"GET /x", ""},
	} {
		line := requestLine(head)
		if got := [2]string{line, lineProtocol(line)}; got != want {
			t.Errorf("%q: %q, want %q", head, got, want)
		}
	}
}
