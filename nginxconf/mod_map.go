package nginxconf

import (
	"strings"

	"ngxsockify/nginxconf/vars"
)

// mapModule is ngx_http_map_module. Maps are compiled in a pass of their
// own before the servers (maps), so that a map may use a map defined later.
var mapModule = module{name: "ngx_http_map_module", directives: []directive{
	{name: "map", custom: true, set: handledElsewhere},
}}

// maps compiles the map blocks of the http block. Their names were declared
// in the declare pass, so a map may use another map defined later.
func (c *compiler) maps(dirs []*Directive) {
	for _, d := range dirs {
		if d.Name != "map" {
			continue
		}
		if len(d.Args) != 2 {
			c.fail(d, `invalid number of arguments in "map" directive`)
		}
		name, ok := varName(d.Args[1])
		if !ok {
			c.fail(d, `invalid variable name "%s"`, d.Args[1])
		}
		var entries []vars.MapEntry
		var opts vars.MapOptions
		seen := map[string]bool{}
		for _, e := range d.Block {
			// nginx keys its hash in lower case and names the second of two
			// equal keys; regexes may repeat.
			if len(e.Args) == 1 && !strings.HasPrefix(e.Name, "~") {
				k := strings.ToLower(strings.TrimPrefix(e.Name, "\\"))
				if e.Name == "default" {
					k = "\x00default"
				}
				if seen[k] {
					if e.Name == "default" {
						c.fail(e, `duplicate default map parameter`)
					}
					c.fail(e, `conflicting parameter "%s"`, strings.TrimPrefix(e.Name, "\\"))
				}
				seen[k] = true
			}
			switch {
			case e.Name == "hostnames" && len(e.Args) == 0:
				opts.Hostnames = true
			case e.Name == "volatile" && len(e.Args) == 0:
				opts.Volatile = true
			case len(e.Args) == 1:
				entries = append(entries, vars.MapEntry{Key: e.Name, Value: e.Args[0]})
			default:
				c.fail(e, `invalid number of the map parameters`)
			}
		}
		m, err := vars.NewMap(c.reg, d.Args[0], entries, opts)
		if err != nil {
			c.fail(d, "%s", err.Error())
		}
		if err := c.reg.DeclareMap(name, m); err != nil {
			c.fail(d, "%s", err.Error())
		}
	}
}
