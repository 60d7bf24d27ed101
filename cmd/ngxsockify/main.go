// Command ngxsockify serves an nginx.conf with websockify_pass locations and
// Lua access hooks. Its command line follows nginx's: -c, -p, -e, -g, -t,
// -T, -q, -s, -v, -V, -h.
//
// With `daemon on` (nginx's default; the embedded default configuration
// says `daemon off`) the process starts itself again in the background,
// marked by NGXSOCKIFY_DAEMON_CHILD=1 in its environment, and returns once
// that child listens and has written the pid file, or exits 1 when the child
// failed (the child prints why). Startup errors go to stderr and, in
// nginx's error-log format, to the error log: the -e file until the
// configuration is read, its error_log files after.
//
// Signals are nginx's master's (process.go): HUP reloads, USR1 reopens the
// logs, QUIT quits gracefully (tunnels run until they end or
// worker_shutdown_timeout), TERM and INT stop at once (1001 to tunnels),
// USR2 starts a new binary on the listening sockets (pid file renamed to
// <pid>.oldbin), WINCH (when daemonized) stops accepting. Started as root
// with master_process on, the process takes on the user directive's user
// (or nobody:nogroup) once its listeners, logs and pid file are open, and
// stays that user: reloads, reopens and upgrades run as that user.
package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"ngxsockify/heapfloor"
	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy"
)

//go:embed default.conf
var defaultConf string

type flags struct {
	help, version, fullVersion, test, dump, quiet bool
	signal, prefix, conf, globals, errorLog       string
	ignoreStream                                  bool // --ignore-stream (usage.go)
}

func parseFlags(args []string) (flags, error) {
	var f flags
	for i := 0; i < len(args); i++ {
		a := args[i]
		if longOption(a, &f) {
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			return f, fmt.Errorf(`invalid option: "%s"`, a)
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case '?', 'h':
				f.help = true
			case 'v':
				f.version = true
			case 'V':
				f.fullVersion = true
			case 't':
				f.test = true
			case 'T':
				f.test, f.dump = true, true
			case 'q':
				f.quiet = true
			case 's', 'p', 'c', 'g', 'e':
				val := a[j+1:]
				if val == "" {
					i++
					if i >= len(args) {
						return f, fmt.Errorf(`option "-%c" requires %s`, a[j], map[byte]string{'s': "signal name", 'p': "directory name", 'c': "file name", 'e': "file name", 'g': "parameter"}[a[j]])
					}
					val = args[i]
				}
				switch a[j] {
				case 's':
					switch val {
					case "stop", "quit", "reopen", "reload":
					default:
						return f, fmt.Errorf(`invalid option: "-s %s"`, val)
					}
					f.signal = val
				case 'p':
					f.prefix = val
				case 'c':
					f.conf = val
				case 'g':
					f.globals = val
				case 'e':
					f.errorLog = val
				}
				j = len(a)
			default:
				return f, fmt.Errorf(`invalid option: "%s"`, a[j:])
			}
		}
	}
	return f, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "ngxsockify: %v\n", err)
		return 1
	}
	if f.help || f.version || f.fullVersion {
		printVersion(stderr, f.fullVersion)
		if f.help {
			fmt.Fprint(stderr, usage)
		}
		return 0
	}
	child := daemonChild()
	opts := nginxconf.LoadOptions{Prefix: f.prefix, Globals: f.globals, CollectAll: f.test, IgnoreStream: f.ignoreStream}
	if f.prefix != "" {
		if abs, err := filepath.Abs(f.prefix); err == nil {
			opts.Prefix = abs
		}
	}
	confPath := f.conf
	if confPath != "" && opts.Prefix != "" && !filepath.IsAbs(confPath) {
		confPath = filepath.Join(opts.Prefix, confPath)
	}
	var startLog startupLog
	if f.errorLog != "" && f.errorLog != "stderr" {
		startLog.paths = []string{fullName(startPrefix(opts.Prefix, confPath), f.errorLog)}
	}
	emerg := func(err error) int {
		level := ngxlog.Emerg // or the error's own (proxy.AlertError)
		var lv interface{ Level() ngxlog.Level }
		if errors.As(err, &lv) {
			level = lv.Level()
		}
		lines := strings.Split(err.Error(), "\n") // several errors, one a line
		if level != ngxlog.Emerg {
			lines = []string{err.Error()} // one message, written whole as nginx does
		}
		for _, line := range lines {
			fmt.Fprintf(stderr, "ngxsockify: [%s] %s\n", level, line)
		}
		startLog.emerg(level, lines)
		return 1
	}
	load := func() (*nginxconf.Config, error) {
		var cfg *nginxconf.Config
		var err error
		if confPath == "" {
			cfg, err = nginxconf.LoadString("<embedded default>", defaultConf, withPrefix(opts))
		} else {
			cfg, err = nginxconf.Load(confPath, opts)
		}
		if err == nil && f.errorLog != "" {
			// -e names the error log of a configuration whose main level
			// has no error_log file: none at all, or only syslog: and
			// memory: ones (nginx then adds its default file at level
			// error beside them).
			if files, toStderr := errorLogFiles(cfg); len(files) == 0 && !toStderr {
				cfg.ErrorLog = append(cfg.ErrorLog, nginxconf.LogFile{Path: cfg.FullName(f.errorLog), Level: ngxlog.Err})
			}
		}
		return cfg, err
	}
	confName := confPath // as nginx names it: -p joined with a relative -c
	if confName == "" {
		confName = "<embedded default>"
		if !f.quiet && !child {
			fmt.Fprintln(stderr, "ngxsockify: no -c given, using the embedded default configuration (ws://127.0.0.1:6080/websockify -> 127.0.0.1:5900)")
		}
	} else if abs, err := filepath.Abs(confName); err == nil {
		confName = abs
	}

	if f.signal != "" {
		cfg, err := load()
		if err != nil {
			return emerg(err)
		}
		return sendSignal(cfg, f.signal, stderr)
	}

	cfg, err := load()
	if err != nil {
		emerg(err)
		if f.test {
			fmt.Fprintf(stderr, "ngxsockify: configuration file %s test failed\n", confName)
		}
		return 1
	}
	if !child && !f.test {
		// What nginx logs while loading goes to its startup log (-e).
		startLog.warnings(cfg)
	}
	// From here on, startup errors go to the configuration's error log.
	startLog.paths, _ = errorLogFiles(cfg)
	if !child {
		// The foreground process printed them before it started the child.
		printWarnings(cfg, f.quiet, stderr)
	}
	// A new binary started by an old one (SIGUSR2) stays in the old one's
	// session, as nginx's does.
	upgraded := os.Getenv(proxy.InheritEnv) != ""
	if cfg.Daemon && daemonSupported && !f.test && !child && !upgraded {
		return daemonize(args, stderr)
	}
	srv, err := proxy.New(cfg, proxy.Options{CheckRequires: f.test, ConfigureArgs: configureArgs()})
	if err != nil {
		emerg(err)
		if f.test {
			fmt.Fprintf(stderr, "ngxsockify: configuration file %s test failed\n", confName)
		}
		return 1
	}
	if !f.quiet || !f.test {
		for _, w := range srv.Warnings() {
			fmt.Fprintf(stderr, "ngxsockify: [warn] %s\n", w)
		}
	}
	if f.test {
		srv.Close()
		if !f.quiet {
			fmt.Fprintf(stderr, "ngxsockify: the configuration file %s syntax is ok\n", confName)
			fmt.Fprintf(stderr, "ngxsockify: configuration file %s test is successful\n", confName)
			if cfg.User != nil && cfg.MasterProcess {
				fmt.Fprintf(stderr, "ngxsockify: serving as user %s once the listeners and logs are open\n", cfg.User)
			}
		}
		if f.dump {
			// nginx's layout: the name line, the file's bytes as they are,
			// one line feed (a file without a final one runs into it).
			for _, file := range cfg.Files {
				fmt.Fprintf(stdout, "# configuration file %s:\n%s\n", file.Path, file.Data)
			}
			if f.conf == "" {
				fmt.Fprintf(stdout, "# configuration file %s:\n%s\n", confName, defaultConf)
			}
		}
		return 0
	}
	defer heapfloor.Start(heapFloor)()
	return serve(srv, cfg, load, emerg, child, args)
}

// heapFloor is the least heap goal while serving (package heapfloor): a
// relay's live heap is about 1 MiB, and at Go's default goal (4 MiB) the
// collector would run every 3 MiB allocated, some 25 times a second under
// a stream of handshakes. GOGC in the environment overrides it.
const heapFloor = 16 << 20

// startPrefix is the prefix that -e is resolved against before the
// configuration is read: -p, else the directory of the configuration file,
// else (the embedded default) the working directory.
func startPrefix(prefix, confPath string) string {
	switch {
	case prefix != "":
		return prefix
	case confPath != "":
		if abs, err := filepath.Abs(confPath); err == nil {
			return filepath.Dir(abs)
		}
	}
	wd, _ := os.Getwd()
	return wd
}

func fullName(prefix, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(prefix, name)
}

// startupLog writes startup errors in nginx's error-log format to the
// error log files known at that point (stderr gets them anyway).
type startupLog struct{ paths []string }

func (l *startupLog) emerg(level ngxlog.Level, lines []string) {
	for _, p := range l.paths {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			continue
		}
		elog := proxy.NewErrorLog(f, level)
		for _, line := range lines {
			elog.Logf(level, 0, "%s", line)
		}
		f.Close()
	}
}

// warnings writes the configuration's Logged warnings (nginx's own
// load-time messages) to the startup log.
func (l *startupLog) warnings(cfg *nginxconf.Config) {
	var ws []nginxconf.Warning
	for _, w := range cfg.Warnings {
		if w.Logged {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return
	}
	for _, p := range l.paths {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			continue
		}
		elog := proxy.NewErrorLog(f, ngxlog.Warn)
		for _, w := range ws {
			level := ngxlog.Warn
			if w.Alert {
				level = ngxlog.Alert
			}
			elog.Logf(level, 0, "%s", w.String())
		}
		f.Close()
	}
}

// errorLogFiles lists the files among the main-level error_log targets
// (syslog: and memory: ones are not files) and reports whether one of the
// targets is stderr.
func errorLogFiles(cfg *nginxconf.Config) (files []string, stderr bool) {
	for _, lf := range cfg.ErrorLog {
		switch {
		case lf.Path == "stderr":
			stderr = true
		case !strings.HasPrefix(lf.Path, "syslog:") && !strings.HasPrefix(lf.Path, "memory:"):
			files = append(files, lf.Path)
		}
	}
	return files, stderr
}

func withPrefix(o nginxconf.LoadOptions) nginxconf.LoadOptions {
	if o.Prefix == "" {
		if wd, err := os.Getwd(); err == nil {
			o.Prefix = wd
		}
	}
	return o
}

func printWarnings(cfg *nginxconf.Config, quiet bool, w io.Writer) {
	if quiet {
		return
	}
	for _, warn := range cfg.Warnings {
		fmt.Fprintf(w, "ngxsockify: [%s] %s\n", warn.Level(), warn.String())
	}
}

// sendSignal implements -s: it reads the pid file of the configuration and
// signals that process.
func sendSignal(cfg *nginxconf.Config, name string, stderr io.Writer) int {
	if cfg.PID == "" {
		fmt.Fprintf(stderr, "ngxsockify: [error] the configuration has no \"pid\" directive, cannot send \"%s\"\n", name)
		return 1
	}
	data, err := os.ReadFile(cfg.PID)
	if err != nil {
		fmt.Fprintf(stderr, "ngxsockify: [error] open() \"%s\" failed (%v)\n", cfg.PID, errors.Unwrap(err))
		return 1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "ngxsockify: [error] invalid PID number \"%s\" in \"%s\"\n", strings.TrimSpace(string(data)), cfg.PID)
		return 1
	}
	sig := map[string]syscall.Signal{"stop": syscall.SIGTERM, "quit": syscall.SIGQUIT, "reopen": sigUSR1, "reload": syscall.SIGHUP}[name]
	if err := kill(pid, sig); err != nil {
		fmt.Fprintf(stderr, "ngxsockify: [alert] kill(%d, %d) failed (%v)\n", pid, sig, err)
		return 1
	}
	return 0
}
