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
// # Variables
//
// Built-in: $args $binary_remote_addr $body_bytes_sent $bytes_sent
// $connection $connection_requests $connection_time $content_length
// $content_type $document_root $document_uri $host $hostname $https $is_args
// $limit_rate $msec $nginx_version $pid $proxy_add_x_forwarded_for
// $proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr
// $proxy_protocol_server_port (listen ... proxy_protocol) $query_string
// $realip_remote_addr $realip_remote_port $realpath_root
// $remote_addr $remote_port
// $remote_user $request $request_body (once proxy_pass read it) $request_completion
// $request_filename $request_id $request_length $request_method
// $request_time $request_uri $scheme $server_addr $server_name $server_port
// $server_protocol $status $time_iso8601 $time_local $upstream_addr
// $upstream_connect_time $upstream_response_time $upstream_status $uri.
// Prefixes: $http_NAME, $sent_http_NAME, $upstream_http_NAME ("_" for "-",
// case-insensitive; $http_cookie joins with "; ", $http_x_forwarded_for
// with ", ", other repeated headers give the first), $cookie_NAME and
// $upstream_cookie_NAME (raw), $arg_NAME (raw, case-insensitive).
// Writable: `set` and capture variables, $args, $limit_rate.
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
// CompilePCRE is the same translator for ngx.re, with PCREOptions (UTF-8,
// extended, PCRE 8.x's dialect and wording, ...).
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
