package ngxlog

import "testing"

func TestLevels(t *testing.T) {
	if l, ok := Parse("error"); !ok || l != Err || l.String() != "error" || int(l) != 4 {
		t.Errorf(`Parse("error") = %v, %v`, l, ok)
	}
	if _, ok := Parse("stderr"); ok {
		t.Error(`error_log accepts no "stderr" level`)
	}
	lua := map[string]Level{}
	Each(func(n string, l Level) { lua[n] = l })
	if lua["ERR"] != Err || lua["DEBUG"] != Debug || lua["STDERR"] != Stderr || len(lua) != 9 {
		t.Errorf("Lua names: %v", lua)
	}
}
