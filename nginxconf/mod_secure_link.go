package nginxconf

import "ngxsockify/nginxconf/vars"

// secureLinkModule is ngx_http_secure_link_module: its directives only say
// what $secure_link checks; a configuration denies with
// `if ($secure_link = "") { return 403; }`.
//
// nginx merges the three settings in a way of their own: a level with
// secure_link_secret starts without its parent's secure_link and
// secure_link_md5, and a level that has (or inherits) neither of those
// inherits the parent's secret. The http level itself is never merged:
// there the three may coexist. Every level below keeps what this level
// set (SecureLinkConf.own) and recomputes the merged value on each of
// them.
var secureLinkModule = module{name: "ngx_http_secure_link_module", directives: []directive{
	{name: "secure_link", dup: "secure_link", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.secureLinkSet(c, lv, d, func(o *vars.SecureLink) { o.Hash = c.template(d, d.Args[0]) })
	}},
	{name: "secure_link_md5", dup: "secure_link_md5", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.secureLinkSet(c, lv, d, func(o *vars.SecureLink) { o.MD5 = c.template(d, d.Args[0]) })
	}},
	{name: "secure_link_secret", dup: "secure_link_secret", set: func(c *compiler, lv *level, d *Directive) {
		lv.conf.secureLinkSet(c, lv, d, func(o *vars.SecureLink) { o.Secret, o.HasSecret = d.Args[0], true })
	}},
}}

// SecureLinkConf is the secure link module's part of a location's settings.
type SecureLinkConf struct {
	// SecureLink is what $secure_link checks here, merged; nil: nothing
	// (the variable reads as not found).
	SecureLink *vars.SecureLink

	// slParent is the merged value of the parent level and slOwn what this
	// level set, kept while the level is compiled (nil: it set nothing).
	slParent, slOwn *vars.SecureLink
}

// secureLinkSet records one of the module's directives at lv (set fills
// the level's own settings) and merges again.
func (lc *LocConf) secureLinkSet(c *compiler, lv *level, d *Directive, set func(*vars.SecureLink)) {
	if !lc.set["secure_link:level"] {
		// the first of the module's directives at this level: what the
		// level holds so far is its parent's merged value
		lc.set["secure_link:level"] = true
		lc.slParent, lc.slOwn = lc.SecureLink, &vars.SecureLink{}
	}
	set(lc.slOwn)
	own := *lc.slOwn
	if lv.ctx == ctxHTTP {
		// nginx does not merge the http level: there the three may
		// coexist, and a server merges these raw values. Keep what a
		// server that sets none of them gets; merging a server's own
		// over that gives what merging them over the raw values does.
		n := &vars.SecureLink{Hash: own.Hash, MD5: own.MD5}
		if n.Hash == nil && n.MD5 == nil {
			n.Secret, n.HasSecret = own.Secret, own.HasSecret
		}
		lc.SecureLink = n
		return
	}
	lc.SecureLink = mergeSecureLink(c, d, lc.slParent, &own)
}

// mergeSecureLink is nginx's merge of the module's settings: own, what a
// level set, over prev, its parent's merged settings (nil: none).
func mergeSecureLink(c *compiler, d *Directive, prev, own *vars.SecureLink) *vars.SecureLink {
	if prev == nil {
		prev = &vars.SecureLink{}
	}
	if own.HasSecret {
		if own.Hash != nil || own.MD5 != nil {
			// nginx finds it when it merges, once the http block is read,
			// and names the line that closes the http block
			c.secureLinkMixed = true
		}
		return &vars.SecureLink{Secret: own.Secret, HasSecret: true}
	}
	m := &vars.SecureLink{Hash: own.Hash, MD5: own.MD5}
	if m.Hash == nil {
		m.Hash = prev.Hash
	}
	if m.MD5 == nil {
		m.MD5 = prev.MD5
	}
	if m.Hash == nil && m.MD5 == nil {
		m.Secret, m.HasSecret = prev.Secret, prev.HasSecret
	}
	return m
}

// checkSecureLink reports a level that mixes secure_link_secret with the
// md5 mode's directives, at the end of the http block (block), as nginx's
// merge does.
func (c *compiler) checkSecureLink(block *Directive) {
	if c.secureLinkMixed {
		c.failAt(block.File, block.CloseLine, `"secure_link_secret" cannot be mixed with "secure_link" and "secure_link_md5"`)
	}
}
