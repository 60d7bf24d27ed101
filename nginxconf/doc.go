// Package nginxconf reads nginx.conf files the way nginx 1.22 does and
// compiles them into the configuration ngxsockify serves.
//
// # Parse layer
//
// Parse and ParseString turn text into a tree of Directive values and
// check what nginx checks while reading, with nginx's messages and line
// numbers ("<message> in <file>:<line>", the line being where the directive
// ENDS):
//
//   - Words follow ngx_conf_read_token(): quotes, \" \' \\ \t \r \n escapes
//     (in quoted and unquoted words alike), `a\ b` is one word, `"a"b` is
//     `unexpected "b"`, `#` starts a comment only at the start of a word,
//     `${` does not open a block, and a word must fit nginx's 4 KiB read
//     window ("too long parameter").
//   - *_by_lua_block bodies follow lua-nginx-module's lexer: braces inside
//     Lua strings, long strings and comments do not count; `#` is Lua's
//     length operator. The body is kept verbatim as the directive's only
//     argument.
//   - include expands globs (sorted, dotfiles skipped) relative to the main
//     file's directory and splices the included directives in place; a
//     missing plain file is `open() "..." failed (2: No such file or
//     directory)`. An include cycle is an error (nginx crashes on it).
//   - Every directive is looked up in the directive table (Lookup): unknown
//     names, wrong contexts, argument counts, on/off flags, `if`
//     parentheses and a few "is duplicate" cases are errors, as in nginx.
//     Directives we accept without acting on them fully produce Warnings;
//     Refused ones are errors. stream{} and mail{} are skipped with one
//     warning; events{} is read and checked but never warned about.
//
// The parse layer never resolves variables, regexes, addresses or values:
// that is the compile layer's job (Load), which also reports the errors
// nginx finds in directive handlers.
package nginxconf
