package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLuaRequireCheck: -t fails, naming the file and line, when a hook
// requires a module that cannot be found, and passes when every module is
// built in, set up by init_by_lua, found on lua_package_path (Debian's
// nginx.* names included) or guarded by pcall. The server still starts
// without -t: nginx finds out per request.
func TestLuaRequireCheck(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib", "mylib.lua"), []byte("return {}\n"), 0o644)
	hook := filepath.Join(dir, "hook.lua")
	main := filepath.Join(dir, "nginx.conf")
	conf := `events {}
http {
    lua_package_path "` + dir + `/lib/?.lua;;";
    init_by_lua_block { package.loaded.settings = {} }
    server {
        listen 127.0.0.1:1;
        location / {
            access_by_lua_block {
                local cjson = require "cjson"
                local settings = require("settings")
                local sha = require "resty.sha256"
                local ok, jwt = pcall(require, "resty.jwt")
                local m = require "mylib"
            }
            content_by_lua_file ` + hook + `;
        }
    }
}
`
	os.WriteFile(main, []byte(conf), 0o644)
	os.WriteFile(hook, []byte("local x = 1\nngx.say(x)\n"), 0o644)
	if out, code := runBin(t, "-t", "-q", "-c", main); code != 0 || out != "" {
		t.Fatalf("every module found: exit %d, %q", code, out)
	}

	os.WriteFile(hook, []byte("local x = 1\nlocal jwt = require(\"resty.jwt\")\n"), 0o644)
	out, code := runBin(t, "-t", "-c", main)
	if code != 1 || !strings.Contains(out, "[emerg] module 'resty.jwt' not found (required at line 2 of "+hook+"; no field package.preload['resty.jwt'], no file '"+dir+"/lib/resty/jwt.lua'") ||
		!strings.HasSuffix(out, "in "+main+":15\nngxsockify: configuration file "+main+" test failed\n") {
		t.Errorf("missing module in a _file hook: exit %d, %q", code, out)
	}

	os.WriteFile(hook, []byte("ngx.say(1)\n"), 0o644)
	os.Remove(filepath.Join(dir, "lib", "mylib.lua"))
	out, code = runBin(t, "-t", "-c", main)
	if code != 1 || !strings.Contains(out, "[emerg] module 'mylib' not found (required at access_by_lua_block;") ||
		!strings.Contains(out, "in "+main+":13\n") {
		t.Errorf("missing module in a block: exit %d, %q", code, out)
	}
}
