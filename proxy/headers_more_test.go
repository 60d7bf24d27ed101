package proxy

import (
	"net/http"
	"testing"

	"ngxsockify/nginxconf"
)

func TestHeadersMoreResponseType(t *testing.T) {
	for v, want := range map[string]string{
		"text/html":                      "text/html",
		"text/html; charset=utf-8":       "text/html",
		"text/html;charset=UTF-8":        "text/html",
		"text/html ; charset=utf-8":      "text/html ",
		"text/html; q=1":                 "text/html; q=1",
		"text/html; q=1; charset=koi8-r": "text/html; q=1",
		"text/html; ":                    "text/html; ",
		"":                               "",
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Content-Type", v)
		}
		if got := responseType(h); got != want {
			t.Errorf("responseType(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestHeadersMoreWildcard(t *testing.T) {
	h := http.Header{"X-Foo-A": {"1"}, "X-Foo-B": {"2"}, "X-Bar": {"3"}, "Content-Type": {"text/html"},
		"Server": serverValue[:1:1], "Last-Modified": {"x"}}
	moreWildcard(h, "x-foo-", "", false)
	moreWildcard(h, "C", "", false)
	moreWildcard(h, "Ser", "", false)
	moreWildcard(h, "Last", "", true)
	if len(h) != 4 || h["X-Bar"] == nil || h["Content-Type"] == nil || h["Server"] == nil || h["Last-Modified"] == nil {
		t.Errorf("after wildcards: %v", h)
	}
	h["Server"] = []string{"mine"}
	moreWildcard(h, "Ser", "", false)
	if _, ok := h["Server"]; ok {
		t.Errorf("a Server set by a command is in the list: a wildcard clears it")
	}
}

func TestHeadersMoreLength(t *testing.T) {
	for v, want := range map[string]bool{"0": true, "12": true, "abc": false, "+1": false, "-0": false, "1 ": false, "99999999999999999999": false} {
		if got := moreLength("content-length", v); got != want {
			t.Errorf("moreLength(%q) = %v, want %v", v, got, want)
		}
	}
	if !moreLength("X-A", "abc") {
		t.Errorf("only Content-Length is checked")
	}
}

func TestHeadersMoreListSet(t *testing.T) {
	list := []moreField{{"Upgrade", "websocket"}, {"X-A", "1"}, {"x-a", "2"}, {"X-B", "3"}}
	list = moreListSet(list, &nginxconf.MoreHeader{Name: "X-A"}, "new")
	list = moreListSet(list, &nginxconf.MoreHeader{Name: "X-C"}, "c")
	list = moreListSet(list, &nginxconf.MoreHeader{Name: "X-B*", Wildcard: true, Prefix: "X-B"}, "")
	list = moreListSet(list, &nginxconf.MoreHeader{Name: "X-D*", Wildcard: true, Prefix: "X-D"}, "d")
	list = moreListSet(list, &nginxconf.MoreHeader{Name: "Cache-Control"}, "")
	got := ""
	for _, f := range list {
		got += f.name + ": " + f.value + "\n"
	}
	if want := "Upgrade: websocket\nX-A: new\nX-C: c\nCache-Control: \n"; got != want {
		t.Errorf("list:\n%s\nwant:\n%s", got, want)
	}
}
