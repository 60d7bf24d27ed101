package static

// BuiltinTypes are nginx's types without a `types` block (its compiled-in
// table): a config that does not include mime.types serves .css or .js as
// default_type, as nginx does.
var BuiltinTypes = map[string]string{
	"html": "text/html",
	"gif":  "image/gif",
	"jpg":  "image/jpeg",
}
