// Package static serves files and directory listings the way nginx's
// static, autoindex, not_modified and range modules do, for the noVNC pages
// that ngxsockify serves next to its websockify locations.
//
// The caller (the proxy) maps the normalised $uri to a file-system path
// with root or alias, runs the index module itself (index files are
// internal redirects), and calls Serve with that path. Serve opens only that
// path. It writes successful answers (200, 206 single and multipart, 304,
// HEAD) and leaves error answers (301 for a directory without its slash,
// 403, 404, 412, 416, 500) to the caller, which renders nginx's error pages.
//
// Measured against nginx 1.22 (see the differential test): Content-Type from
// the URI's extension through mime.types, ETag "<mtime hex>-<size hex>",
// Last-Modified, Accept-Ranges, If-Modified-Since compared exactly
// (if_modified_since exact), If-None-Match (weak), If-Match and
// If-Unmodified-Since (412), Range with nginx's parser (suffix ranges,
// overlapping ranges, multipart/byteranges with a 20-digit counter as
// boundary, 416 with "Content-Range: bytes */size"), If-Range, max_ranges,
// and the autoindex listings: html (names cut at 50 columns, counted in
// characters when the listing goes out as utf-8, with nginx's own UTF-8
// decoder), xml, json and jsonp (callback from the query, 400 for an
// invalid name), autoindex_exact_size and autoindex_localtime. Listings
// are streamed without a length, as nginx sends them.
//
// Serve is safe for concurrent use.
package static
