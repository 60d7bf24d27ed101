// Package nginxconf reads nginx.conf files the way nginx 1.22 does and
// compiles them into the configuration ngxsockify serves.
//
// # Parse layer
//
// Parse and ParseString turn text into a tree of Directive values and
// check everything nginx checks while reading, with nginx's messages and
// line numbers ("<message> in <file>:<line>", the line being where the
// directive ENDS: its ';', its '{', or the '}' of a Lua block):
//
//   - Words follow ngx_conf_read_token(): quotes, \" \' \\ \t \r \n escapes
//     (in quoted and unquoted words alike; other backslashes stay), `a\ b`
//     is one word, `"a"b` is `unexpected "b"`, a ')' may follow a quoted
//     word, `#` starts a comment only at the start of a word, `${` does not
//     open a block, and a word must fit nginx's 4 KiB read window
//     ("too long parameter ...").
//   - *_by_lua_block bodies follow lua-nginx-module's lexer: braces inside
//     one-line Lua strings, long strings [[ ]] [==[ ]==] and comments
//     (-- }, --[[ } ]]) do not count; `#` is Lua's length operator. The
//     read window and the lexer's fallbacks are emulated so the same
//     blocks fail with the same messages. The body is kept verbatim as the
//     directive's last argument; empty code is an error, as in nginx.
//   - include expands globs (sorted bytewise, dotfiles skipped unless the
//     pattern spells the dot) relative to the main file's directory (-p
//     only resolves a relative main file) and splices the included
//     directives in place, checked in the including context. A missing
//     plain file is `open() "..." failed (2: No such file or directory)`
//     at the include line. An include cycle is an error (nginx crashes).
//   - Every directive is looked up in the directive table (Lookup):
//     unknown names, contexts, argument counts, on/off flags, the shape
//     of `if` conditions, and "is duplicate" for flags, root/alias, the
//     Lua phase handlers and other single-value directives are errors
//     with nginx's wording. The table's contexts and arities are checked
//     against real nginx in directives_test.go.
//   - Support: directives we accept without acting on them produce
//     Warnings (one per occurrence, with file:line); Refused ones are
//     errors. stream{} and mail{} are skipped with one warning; events{}
//     is read and checked but never warned about. map, types, geo,
//     split_clients and charset_map bodies are kept as entries (Directive
//     with the key as Name), not checked.
//
// ParseGlobals reads -g text ("... in command line").
//
// The parse layer never resolves variables, regexes, addresses or values:
// that is the compile layer's job (Load), which reports the errors nginx
// finds inside directive handlers.
//
// # Compile layer
//
// Load (and LoadString for the embedded default) parses, then compiles in
// two passes: declare (every variable a config defines: set, map,
// set_by_lua, regex named captures, so a variable may be used before the
// directive that defines it, as in nginx) and build (the model in
// model.go). Inheritance follows nginx's merge rules: a block starts from
// its parent's settings, and a list directive (allow/deny, add_header,
// index, error_page, access_log, set_real_ip_from) written in the block
// replaces the parent's list. `if` blocks and limit_except blocks get the
// settings of their location, including those written after them.
// Values with variables become vars.Templates, regexes vars.Regexes; Lua
// code stays source (LuaCode) and is compiled by the proxy at load.
// Errors the compiler finds (unknown variables, bad listen, duplicate
// locations or default servers, bad regexes, ...) use nginx's words and
// position; an unknown variable also names its line (nginx names none).
package nginxconf
