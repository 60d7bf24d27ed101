package nginxconf

import (
	"testing"
)

// TestRegistryEntries checks what the registry's init cannot: every
// declared name is a directive nginx 1.22 (with the Lua and websockify
// modules) knows, and every support class other than Implemented carries
// a reason where the user will see it.
func TestRegistryEntries(t *testing.T) {
	for name, sp := range registry {
		info, ok := Lookup(name)
		if !ok {
			t.Errorf("%s: declared by a module but unknown to the directive table", name)
			continue
		}
		if info.Support != sp.support {
			t.Errorf("%s: table says %v, registry %v", name, info.Support, sp.support)
		}
		if (sp.inherit != inheritMerge) != (sp.field != "") {
			t.Errorf("%s: an inherit rule other than merge needs a field, and only it", name)
		}
		if sp.support == Refused && sp.note == "" {
			t.Errorf("%s: refused without a reason", name)
		}
		if sp.opens != 0 && !info.Block() {
			t.Errorf("%s: opens a context but takes no block", name)
		}
	}
}

// TestInheritRules follows each rule through a config: a nested location
// drops the location's content handler and flags (inheritNone), an if
// block keeps them, and a list written in a block replaces the inherited
// list (inheritReplace) while other values are inherited (inheritMerge).
func TestInheritRules(t *testing.T) {
	cfg, err := loadHTTP(t, `
    server {
        listen 127.0.0.1:8080;
        allow 10.0.0.0/8;
        add_header A 1;
        location /a {
            websockify_pass 127.0.0.1:5900;
            internal;
            add_header B 2;
            add_header C 3;
            client_max_body_size 5m;
            location /a/b { }
            if ($arg_x) { set $y 1; }
        }
    }`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a := srv.Root.Prefix[0]
	b := a.Nested.Prefix[0]
	iff := a.Stmts[0].(*IfStmt).Loc.Conf
	switch {
	case a.Conf.Websockify == nil || !a.Conf.Internal:
		t.Error("location /a lost its own websockify_pass or internal")
	case b.Conf.Websockify != nil || b.Conf.Internal:
		t.Error("nested location inherited websockify_pass or internal (inheritNone)")
	case iff.Websockify != a.Conf.Websockify || !iff.Internal:
		t.Error("if block lost its location's content handler")
	}
	if n := len(a.Conf.AddHeaders); n != 2 || a.Conf.AddHeaders[0].Name != "B" {
		t.Errorf("add_header in /a: %d headers, want B and C only (inheritReplace)", n)
	}
	if n := len(b.Conf.AddHeaders); n != 2 {
		t.Errorf("add_header in /a/b: %d headers, want /a's two", n)
	}
	if len(b.Conf.Access) != 1 || b.Conf.ClientMaxBodySize != 5<<20 {
		t.Error("nested location did not inherit allow and client_max_body_size (inheritMerge)")
	}
	for i, lc := range cfg.HTTP.Confs {
		if lc.ID != i {
			t.Fatalf("Confs[%d].ID = %d", i, lc.ID)
		}
	}
}
