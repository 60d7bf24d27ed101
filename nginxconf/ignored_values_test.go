package nginxconf

import "testing"

func TestNgxParseTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		sec  bool
		want int64
		ok   bool
	}{
		{"500ms", false, 500, true},
		{"30", false, 30, true},
		{"30s", false, 30000, true},
		{"1h30m", false, 5400000, true},
		{"1s500", false, 1500, true},
		{"1m1h", false, 0, false},
		{"1y", false, 0, false},
		{"1M", false, 0, false},
		{"ms", false, 0, false},
		{"30", true, 30, true},
		{"1d", true, 86400, true},
		{"1y", true, 31536000, true},
		{"500ms", true, 0, false},
		{"1h 30m", true, 5400, true},
		{"x", true, 0, false},
		{"", true, 0, false},
	} {
		got, ok := ngxParseTime(c.in, c.sec)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("ngxParseTime(%q, sec=%v) = %d, %v; want %d, %v", c.in, c.sec, got, ok, c.want, c.ok)
		}
	}
}

// TestIgnoredValuesAreIgnored: the table reads only values of directives
// ngxsockify ignores (the others have handlers of their own), and holds
// the ones the brief measured.
func TestIgnoredValuesAreIgnored(t *testing.T) {
	for name := range ignoredValues() {
		if info, ok := Lookup(name); !ok || info.Support != Ignored {
			t.Errorf("%s is in ignoredValues but is %v", name, info.Support)
		}
	}
	for _, name := range []string{"types_hash_max_size", "proxy_max_temp_file_size", "output_buffers",
		"ssl_buffer_size", "sendfile_max_chunk", "read_ahead", "open_file_cache", "fastcgi_buffers"} {
		if _, ok := ignoredValues()[name]; !ok {
			t.Errorf("%s has no entry", name)
		}
	}
}

func TestCheckIgnoredValue(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"types_hash_max_size", []string{"abc"}, "invalid number"},
		{"proxy_max_temp_file_size", []string{"1g"}, "invalid value"},
		{"output_buffers", []string{"1", "1g"}, "invalid value"},
		{"directio", []string{"1g"}, ""},
		{"open_file_cache", []string{"max=x"}, `invalid "open_file_cache" parameter "max=x"`},
		{"proxy_cache_methods", []string{"get", "PUT"}, `invalid value "PUT"`},
		{"proxy_cache_valid", []string{"200", "1m"}, ""},
	} {
		got, _ := checkIgnoredValue(&Directive{Name: c.name, Args: c.args})
		if got != c.want {
			t.Errorf("%s %v: %q, want %q", c.name, c.args, got, c.want)
		}
	}
}
