package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
)

// LoadOptions controls Load.
type LoadOptions struct {
	Prefix     string // -p; "" means the directory of the main file
	Globals    string // -g directives, applied at the main level
	CollectAll bool   // report every error (for -t) instead of the first
	// IgnoreStream drops stream{} and mail{} with a warning instead of
	// refusing them (ParseOptions.IgnoreStream; --ignore-stream).
	IgnoreStream bool
}

// Load reads the main file and everything it includes, then checks and
// compiles it. Errors read like nginx's: "<message> in <file>:<line>".
func Load(path string, opts LoadOptions) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(abs, ParseOptions{Prefix: opts.Prefix, CollectAll: opts.CollectAll, IgnoreStream: opts.IgnoreStream})
	if err != nil {
		return nil, err
	}
	return finishLoad(p, abs, opts)
}

// LoadString is Load for a config held in memory, as if it were the file at path.
func LoadString(path, text string, opts LoadOptions) (*Config, error) {
	p, err := ParseString(path, text, ParseOptions{Prefix: opts.Prefix, CollectAll: opts.CollectAll, IgnoreStream: opts.IgnoreStream})
	if err != nil {
		return nil, err
	}
	return finishLoad(p, path, opts)
}

func finishLoad(p *Parsed, main string, opts LoadOptions) (*Config, error) {
	if opts.Globals != "" {
		g, err := ParseGlobals(opts.Globals)
		if err != nil {
			return nil, err
		}
		p.Directives = append(p.Directives, g.Directives...)
		p.Warnings = append(p.Warnings, g.Warnings...)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = filepath.Dir(main)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return compile(p, main, prefix, opts.CollectAll)
}

// FullName resolves a path the way nginx resolves relative names: against the prefix.
func (c *Config) FullName(name string) string {
	return fullName(c.Prefix, name)
}

func fullName(prefix, name string) string {
	if name == "" || filepath.IsAbs(name) || name == "stderr" {
		return name
	}
	return filepath.Join(prefix, name)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
