package nginxconf

import (
	"ngxsockify/nginxconf/vars"
)

// geoModule is ngx_http_geo_module: `geo [$address] $variable { ... }`.
// Like maps, geo blocks are compiled in a pass of their own (geos), their
// names declared before (declare), so any template may use them.
var geoModule = module{name: "ngx_http_geo_module", directives: []directive{
	{name: "geo", custom: true, set: handledElsewhere},
}}

// geos compiles the geo blocks of the http block.
func (c *compiler) geos(dirs []*Directive) {
	for _, d := range dirs {
		if d.Name != "geo" {
			continue
		}
		if len(d.Args) != 1 && len(d.Args) != 2 {
			c.fail(d, `invalid number of arguments in "geo" directive`)
		}
		name, ok := varName(d.Args[len(d.Args)-1])
		if !ok {
			c.fail(d, `invalid variable name "%s"`, d.Args[len(d.Args)-1])
		}
		source := ""
		if len(d.Args) == 2 {
			source = d.Args[0]
		}
		geo, err := vars.NewGeo(c.reg, source)
		if err != nil {
			c.fail(d, "%s", err.Error())
		}
		for _, e := range d.Block {
			c.geoEntry(geo, e)
		}
		if err := c.reg.DeclareGeo(name, geo); err != nil {
			c.fail(d, "%s", err.Error())
		}
	}
}

// geoEntry adds one line of a geo block, with nginx's words for errors.
func (c *compiler) geoEntry(geo *vars.Geo, e *Directive) {
	switch {
	case e.Name == "ranges" && len(e.Args) == 0:
		geo.SetRanges()
		return
	case e.Name == "proxy_recursive" && len(e.Args) == 0:
		geo.SetRecursive()
		return
	case len(e.Args) != 1:
		c.fail(e, `invalid number of the geo parameters`)
	}
	key, val := e.Name, e.Args[0]
	switch key {
	case "default":
		if old, had := geo.SetDefault(val); had {
			c.warn(e, `duplicate network "default", value: "%s", old value: "%s"`, val, old)
		}
		return
	case "proxy":
		p, _, ok := vars.ParseGeoNet(val)
		if !ok {
			c.fail(e, `invalid network "%s"`, val)
		}
		geo.AddProxy(p)
		return
	}
	del := key == "delete"
	if del {
		key = val
	}
	if geo.Ranges() {
		lo, hi, ok := vars.ParseGeoRange(key)
		if !ok {
			c.fail(e, `invalid range "%s"`, key)
		}
		switch {
		case del:
			if !geo.DeleteRange(lo, hi) {
				c.warn(e, `no address range "%s" to delete`, key)
			}
		default:
			olds, overlaps := geo.AddRange(lo, hi, val)
			for _, old := range olds {
				c.warn(e, `duplicate range "%s", value: "%s", old value: "%s"`, key, val, old)
			}
			if overlaps != "" {
				c.fail(e, `range "%s" overlaps "%s"`, key, overlaps)
			}
		}
		return
	}
	p, low, ok := vars.ParseGeoNet(key)
	if !ok {
		c.fail(e, `invalid network "%s"`, key)
	}
	if low {
		c.warn(e, "low address bits of %s are meaningless", key)
	}
	if del {
		if !geo.DeleteNet(p) {
			c.warn(e, `no network "%s" to delete`, key)
		}
		return
	}
	if old, had := geo.AddNet(p, val); had {
		c.warn(e, `duplicate network "%s", value: "%s", old value: "%s"`, key, val, old)
	}
}
