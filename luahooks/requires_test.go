package luahooks

import (
	"reflect"
	"testing"
)

func TestLiteralRequires(t *testing.T) {
	src := `#!/usr/bin/env lua
local a = require "a.b"
local function f()
  return require('c'), require[[d]]
end
local ok, e = pcall(require, "guarded")
local n = require(name)
local t = { x = require("e") .. require "f" }
obj:require("not.a.require")
`
	got := LiteralRequires(src, true)
	want := []Require{{"a.b", 2}, {"c", 4}, {"d", 4}, {"e", 8}, {"f", 8}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := LiteralRequires("local = broken", false); got != nil {
		t.Errorf("broken source: %v", got)
	}
}

func TestFindModule(t *testing.T) {
	dir := t.TempDir()
	rt, err := New(Options{PackagePath: dir + "/?.lua", CodeCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for name, want := range map[string]bool{"cjson": true, "resty.md5": true, "ngx.re": true, "nope.x": false} {
		found, searched, err := rt.FindModule(name)
		if err != nil || found != want {
			t.Errorf("%s: found %v (%s) %v, want %v", name, found, searched, err, want)
		}
		if !found && searched != "no field package.preload['nope.x'], no file '"+dir+"/nope/x.lua'" {
			t.Errorf("searched %q", searched)
		}
	}
}
