package vars

import "testing"

func TestUnescapeRedirect(t *testing.T) {
	// results measured on nginx 1.22 (test/testdata/routing/rewrite_redirect_unescape.case)
	for in, want := range map[string]string{
		"":                                      "",
		"/plain":                                "/plain",
		"http%3A%2F%2Fexample.com%2F%3Ffrom%3D": "http://example.com/?from%3D",
		"http%3A%2F%2Fexample.com%0D%0Asplit":   "http://example.com%0D%0Asplit",
		"/blah%20%3Fblah":                       "/blah%20?blah",
		"/blah%20%2fblah":                       "/blah%20/blah",
		"/a%zz%4%2g%41%3f%41":                   "/azz2gA?%41",
		"/q?x=%41":                              "/q?x=%41",
		"/x%":                                   "/x",
		"/x%4":                                  "/x",
		"/x%25%7e%7F%E2":                        "/x%25~%7F%E2",
	} {
		if got := UnescapeRedirect(in); got != want {
			t.Errorf("UnescapeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
}
