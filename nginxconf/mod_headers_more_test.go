package nginxconf

import (
	"fmt"
	"strings"
	"testing"
)

func TestHeadersMoreParse(t *testing.T) {
	cfg, err := loadHTTP(t, `
more_set_headers "X-Http: 1";
server {
    more_clear_headers -s "200  404 " -t 'text/html;text/plain ' "X-Foo-*" Server "  X-Sp: a  b";
    location /a { more_set_input_headers -r "X-In:::  v $uri" ""; }
    location /b { }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	var a, b *LocConf
	for _, l := range srv.Root.Prefix {
		switch l.Path {
		case "/a":
			a = l.Conf
		case "/b":
			b = l.Conf
		}
	}
	if len(b.MoreHeaders) != 2 || !b.MoreOutput || b.MoreInput {
		t.Fatalf("/b inherits %d commands (output %v input %v), want 2", len(b.MoreHeaders), b.MoreOutput, b.MoreInput)
	}
	if len(a.MoreHeaders) != 3 || !a.MoreInput {
		t.Fatalf("/a has %d commands, want the 2 inherited and its own", len(a.MoreHeaders))
	}
	clear := a.MoreHeaders[1]
	if got := fmt.Sprint(clear.Statuses, clear.Types); got != "[200 404] [text/html text/plain]" {
		t.Errorf("clear -s -t = %s", got)
	}
	var names []string
	for _, h := range clear.Headers {
		names = append(names, fmt.Sprintf("%q/%v/%q/%v", h.Name, h.Wildcard, h.Prefix, h.Value != nil))
	}
	// the module takes the name from the argument's start: leading
	// spaces shift it (and cut its end)
	if got := strings.Join(names, " "); got != `"X-Foo-*"/true/"X-Foo-"/false "Server"/false/""/false "  X-"/false/""/false` {
		t.Errorf("clear headers = %s", got)
	}
	in := a.MoreHeaders[2]
	if !in.Input || !in.Replace || len(in.Headers) != 1 || in.Headers[0].Name != "X-In" || in.Headers[0].Value == nil {
		t.Errorf("input command = %+v", in)
	}
}

func TestHeadersMoreErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`more_set_headers -x "X: 1";`, `more_set_headers: invalid option name: "-x"`},
		{`more_set_headers "X: 1" -s;`, `more_set_headers: option -s takes an argument.`},
		{`more_set_headers -s "20a" "X: 1";`, `more_set_headers: invalid digit "a" found in the status code list "20a"`},
		{`more_clear_headers "*";`, `more_clear_headers: wildcard key too short: *`},
		{`more_clear_headers " ";`, `more_clear_headers: no key found in the header argument:  `},
		{`more_set_input_headers -s 200 "X: 1";`, `more_set_input_headers: invalid option name: "-s"`},
		{`more_set_headers -r "X: 1";`, `more_set_headers: invalid option name: "-r"`},
		{`more_set_headers -tt "X: 1";`, `more_set_headers: invalid option name: "-tt"`},
	} {
		_, err := loadHTTP(t, tc.body)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q (no file and line, as the module logs it)", tc.body, err, tc.want)
		}
	}
}
