// Package vars implements nginx variables, value templates, regexes and
// maps for ngxsockify, with the semantics of nginx 1.22 and
// lua-nginx-module's ngx.var.
//
// # Load time
//
// The config compiler builds one Registry, declares every variable the
// configuration defines (Declare for `set`, DeclareCapture for regex named
// captures, DeclareMap for `map`), then compiles values with Registry.Compile and
// regexes with CompileRegex. Unknown names fail at compile time with nginx's
// `unknown "x" variable`; nothing is parsed per request.
//
// # Request time
//
// NewRequest creates the per-request state (one allocation for all `set`
// and map slots). Templates read it through Template.Eval; the Lua bridge
// reads and writes it through Request.Get, Set and Unset (ngx.var), which
// follow lua-nginx-module:
//
//	undeclared name, $arg_x absent, $args empty  -> not found (nil)
//	declared by `set` but not yet written         -> ""
//	named capture not set by a match              -> not found
//	ngx.var.args = ""                             -> "" (found)
//	write to a map variable                       -> `variable "m" cannot be assigned a value`
//	write to an undeclared name, $arg_*, $http_* -> `variable "x" not found for writing; ...`
//	write to a read-only built-in ($uri, $host)   -> `variable "uri" not changeable`
//	write to $args                                -> changes $query_string, $is_args, $arg_*
//	Unset (ngx.var.x = nil)                       -> later reads give not found
//
// A successful regex match is recorded with Request.SetCaptures: $1..$9 then
// read its groups and each named group sets its variable. Map variables are
// evaluated on first use and cached for the request unless `volatile`.
//
// # Regexes
//
// nginx regexes are PCRE. CompileRegex uses github.com/dlclark/regexp2 and
// Go's regexp where both agree (see Regex). Matching is byte-wise and groups
// are numbered left to right, named groups included, as in PCRE. Compile
// errors are worded like PCRE2's through nginx:
// `pcre2_compile() failed: missing closing parenthesis in "(abc"`.
//
// # URIs
//
// NormalizeURI turns a raw request path into $uri the way nginx's parser
// does (decode %XX, merge slashes, resolve "." and ".."), and reports the
// targets nginx answers with 400.
//
// # Concurrency
//
// A Registry, its Templates, Regexes and Maps are immutable after load and
// safe for concurrent use. A Request belongs to one goroutine.
package vars
