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
//   - Every directive is looked up in the directive table (Lookup, built
//     from crossplane's copy of nginx's tables and the registry below):
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
// # Modules and the registry
//
// As nginx keeps one module per file (ngx_http_access_module.c: a command
// table, a location config with its merge, a phase handler), each nginx
// module has one file here, mod_<module>.go, holding:
//
//   - its command table, a module value listed in registry.go's modules:
//     one directive entry per name with its support class (Implemented
//     when it has a set function), the slot that makes a second
//     occurrence "is duplicate", the context a block directive opens, its
//     inheritance rule (inheritMerge, inheritReplace for lists,
//     inheritNone for content handlers, inheritNot for try_files, which no
//     nested block inherits) with the LocConf field it applies to, and its
//     set function;
//   - its part of the location settings, a struct embedded in LocConf,
//     whose fields therefore read as the location's, and its defaults
//     (the module's create function, nginx's create_loc_conf);
//   - the compile functions of its directives.
//
// Contexts and arities stay crossplane's (directives.go), checked against
// nginx in directives_test.go. Everything the parser needs beyond them
// (duplicate slots, block contexts, which Lua directives refuse empty
// code, which ones `off` disarms, the support classes and their warnings)
// is derived from the entries; compile.go's block loops hand every
// directive to apply, which runs the entry's set function at the level
// (main, http, server, location, if, limit_except) it appears in.
//
// The proxy keeps the other half of each module: the runtime objects it
// builds at load from these settings (indexed by LocConf.ID, Server.ID and
// LuaCode.ID, which number every compiled level and hook) and the phase
// handler it registers (see package proxy).
//
// # Adding a directive: a worked example
//
// client_body_buffer_size, per location, as ngx_http_core_module has it.
// In mod_core.go, add an entry to httpCoreModule:
//
//	{name: "client_body_buffer_size", dup: "client_body_buffer_size",
//		set: func(c *compiler, lv *level, d *Directive) {
//			n, err := ParseSize(d.Args[0])
//			if err != nil {
//				c.fail(d, `"client_body_buffer_size" directive invalid value`)
//			}
//			lv.conf.ClientBodyBufferSize = n
//		}},
//
// the field ClientBodyBufferSize to CoreConf in the same file, and nginx's
// default (8k, two memory pages) to the module's create function there. The name's
// contexts and arity already come from crossplane, dup gives nginx's "is
// duplicate", and the default rule, inheritMerge, lets nested blocks
// inherit it. Then add a case to test/testdata/syntax/ (checked against
// nginx -t) for a bad value, and one to the routing or Lua suites for the
// behaviour, and read the value where it acts, in the proxy module that
// owns the phase (rq.conf.ClientBodyBufferSize). That is one module file
// per layer and the test cases.
//
// A directive ngxsockify does not implement needs no entry at all when
// ignoring it cannot change who gets in or what they receive (it is then
// Ignored, with a warning); otherwise it gets an entry with FailClosed,
// UnsupportedContent or Refused and a note saying why (mod_others.go).
//
// # Compile layer
//
// Load (and LoadString for the embedded default) parses, then compiles in
// two passes: declare (every variable a config defines: set, map,
// set_by_lua, regex named captures, so a variable may be used before the
// directive that defines it, as in nginx) and build (the model in
// model.go). Inheritance follows nginx's merge rules: a block starts from
// its parent's settings, and a list directive (allow/deny, add_header,
// index, error_page, access_log, set_real_ip_from, limit_req, limit_conn)
// written in the block replaces the parent's list. `if` blocks and
// limit_except blocks get the settings of their location, including those
// written after them.
// Values with variables become vars.Templates, regexes vars.Regexes; Lua
// code stays source (LuaCode) and is compiled by the proxy at load.
// Errors the compiler finds (unknown variables, bad listen, duplicate
// locations or default servers, bad regexes, ...) use nginx's words and
// position; an unknown variable also names its line (nginx names none).
package nginxconf
