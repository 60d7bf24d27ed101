package main

// usage is what -h and -? print after the version line: nginx 1.22's text
// (`nginx -h`), same options and layout, with ngxsockify's defaults and
// its one long option added.
const usage = `Usage: ngxsockify [-?hvVtTq] [-s signal] [-p prefix]
                  [-e filename] [-c filename] [-g directives]
                  [--ignore-stream]

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and configure options then exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to a master process: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: the directory of the configuration file)
  -e filename   : set error log file (default: the configuration's, else stderr)
  -c filename   : set configuration file (default: the embedded default configuration)
  -g directives : set global directives out of configuration file
  --ignore-stream : accept stream{} and mail{} blocks with a warning and
                  serve none of their listeners (without it they are
                  errors: ngxsockify serves http only)
`

// longOption takes ngxsockify's long options, which nginx does not have;
// it reports whether a was one.
func longOption(a string, f *flags) bool {
	switch a {
	case "--ignore-stream":
		f.ignoreStream = true
		return true
	}
	return false
}
