package vars

import "testing"

// TestReferersLoad checks valid_referers' load-time rules (measured on
// nginx 1.22.1): the errors of Add, and Finish's server names and its
// refusal of a list with "none"/"blocked" and no host name.
func TestReferersLoad(t *testing.T) {
	for _, c := range []struct {
		values, names []string
		addErr        string // the first Add error
		nameErr, err  string // Finish's
	}{
		{values: []string{"none"}, err: ErrNoValidReferer.Error()},
		{values: []string{"blocked", "~x"}, err: ErrNoValidReferer.Error()},
		{values: []string{"none", "server_names"}, names: []string{"~^x$"}, err: ErrNoValidReferer.Error()},
		{values: []string{"none", "server_names"}, names: []string{""}},
		{values: []string{"none", "server_names"}, names: []string{"~^x$", "_"}},
		{values: []string{"none", "*.a.com"}},
		{values: []string{"blocked", "www.a.*"}},
		{values: []string{"none", "a.com/pics/"}},
		{values: []string{"server_names"}, names: []string{"~^x$"}},
		{values: []string{"none", ""}, addErr: `invalid referer ""`},
		{values: []string{"~"}, addErr: `empty regex in "~"`},
		{values: []string{"a.*.com"}, addErr: `invalid hostname or wildcard "a.*.com"`},
		{values: []string{"*"}, addErr: `invalid hostname or wildcard "*"`},
		{values: []string{"*."}, addErr: `invalid hostname or wildcard "*."`},
		{values: []string{"*.a.*"}, addErr: `invalid hostname or wildcard "*.a.*"`},
		{values: []string{"a..com"}, addErr: `invalid hostname or wildcard "a..com"`},
		{values: []string{"a.com", "A.com/x"}, addErr: `conflicting parameter "a.com"`},
		{values: []string{".a.com", "a.com"}, addErr: `conflicting parameter "a.com"`},
		{values: []string{"a.com", ".A.com"}, addErr: `conflicting parameter ".a.com"`},
		{values: []string{"*.a.com", ".a.com"}, addErr: `conflicting parameter ".a.com"`},
		{values: []string{"www.a.*", "www.a.*"}, addErr: `conflicting parameter "www.a.*"`},
		{values: []string{"/x", "/y"}, addErr: `conflicting parameter ""`},
		{values: []string{".*", "."}},
		{values: []string{"server_names", "a.com"}, names: []string{"a.com"}, nameErr: `conflicting parameter "a.com"`},
		{values: []string{"server_names", "a.com"}, names: []string{".a.com"}, nameErr: `conflicting parameter ".a.com"`},
		{values: []string{"server_names"}, names: []string{"a.com", "a.com"}, nameErr: `conflicting parameter "a.com"`},
	} {
		rf := NewReferers()
		addErr := ""
		for _, v := range c.values {
			if err := rf.Add(v); err != nil {
				addErr = err.Error()
				break
			}
		}
		if addErr != c.addErr {
			t.Errorf("%q: Add error %q, want %q", c.values, addErr, c.addErr)
			continue
		}
		if addErr != "" {
			continue
		}
		nameErr, err := rf.Finish(c.names)
		if s := errText(nameErr); s != c.nameErr {
			t.Errorf("%q %q: name error %q, want %q", c.values, c.names, s, c.nameErr)
		}
		if s := errText(err); s != c.err {
			t.Errorf("%q %q: error %q, want %q", c.values, c.names, s, c.err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
