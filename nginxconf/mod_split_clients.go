package nginxconf

import (
	"ngxsockify/nginxconf/vars"
)

// splitClientsModule is ngx_http_split_clients_module:
// `split_clients string $variable { percent value; ... }`. Like maps and
// geo blocks, its blocks are compiled in a pass of their own
// (splitClients), their names declared before (declare), so any template
// may use them.
var splitClientsModule = module{name: "ngx_http_split_clients_module", directives: []directive{
	{name: "split_clients", custom: true, set: handledElsewhere},
}}

// splitClients compiles the split_clients blocks of the http block.
func (c *compiler) splitClients(dirs []*Directive) {
	for _, d := range dirs {
		if d.Name != "split_clients" {
			continue
		}
		if len(d.Args) != 2 {
			c.fail(d, `invalid number of arguments in "split_clients" directive`)
		}
		name, ok := varName(d.Args[1])
		if !ok {
			c.fail(d, `invalid variable name "%s"`, d.Args[1])
		}
		s, err := vars.NewSplit(c.reg, d.Args[0])
		if err != nil {
			c.fail(d, "%s", err.Error())
		}
		for _, e := range d.Block {
			if len(e.Args) != 1 {
				c.fail(e, `invalid number of arguments in "split_clients" directive`)
			}
			if err := s.Add(e.Name, e.Args[0]); err != nil {
				c.fail(e, "%s", err.Error())
			}
		}
		if err := s.Finish(); err != nil {
			c.failAt(d.File, d.CloseLine, err.Error())
		}
		if err := c.reg.DeclareSplit(name, s); err != nil {
			c.fail(d, "%s", err.Error())
		}
	}
}
