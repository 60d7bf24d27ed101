// Command ngxsockify serves an nginx.conf with websockify_pass locations and
// Lua access hooks. Its command line follows nginx's.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ngxsockify/nginxconf"
	"ngxsockify/ngxlog"
	"ngxsockify/proxy"
)

// Version is ngxsockify's version.
const Version = "0.1.0"

//go:embed default.conf
var defaultConf string

const usage = `Usage: ngxsockify [-?hvVtTq] [-s signal] [-p prefix] [-c filename] [-g directives]

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and configure options then exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to a master process: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: the directory of the configuration file)
  -c filename   : set configuration file (default: the embedded default configuration)
  -g directives : set global directives out of configuration file
`

type flags struct {
	help, version, fullVersion, test, dump, quiet bool
	signal, prefix, conf, globals                 string
}

func parseFlags(args []string) (flags, error) {
	var f flags
	for i := 0; i < len(args); i++ {
		a := args[i]
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
			case 's', 'p', 'c', 'g':
				val := a[j+1:]
				if val == "" {
					i++
					if i >= len(args) {
						return f, fmt.Errorf(`option "-%c" requires %s`, a[j], map[byte]string{'s': "signal name", 'p': "directory name", 'c': "file name", 'g': "parameter"}[a[j]])
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
	emerg := func(err error) int {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "ngxsockify: [emerg] %s\n", line)
		}
		return 1
	}
	f, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "ngxsockify: %v\n", err)
		return 1
	}
	if f.help || f.version || f.fullVersion {
		fmt.Fprintf(stderr, "ngxsockify version: ngxsockify/%s (follows nginx/1.22.1)\n", Version)
		if f.fullVersion {
			fmt.Fprintf(stderr, "built with %s\nconfigure arguments: websockify lua(gopher-lua) ssl\n", goVersion())
		}
		if f.help {
			fmt.Fprint(stderr, usage)
		}
		return 0
	}
	opts := nginxconf.LoadOptions{Prefix: f.prefix, Globals: f.globals, CollectAll: f.test}
	if f.prefix != "" {
		if abs, err := filepath.Abs(f.prefix); err == nil {
			opts.Prefix = abs
		}
	}
	confName := f.conf
	load := func() (*nginxconf.Config, error) {
		if f.conf == "" {
			return nginxconf.LoadString("<embedded default>", defaultConf, withPrefix(opts))
		}
		if opts.Prefix != "" && !filepath.IsAbs(f.conf) {
			return nginxconf.Load(filepath.Join(opts.Prefix, f.conf), opts)
		}
		return nginxconf.Load(f.conf, opts)
	}
	if confName == "" {
		confName = "<embedded default>"
		if !f.quiet {
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
	printWarnings(cfg, f.quiet, stderr)
	srv, err := proxy.New(cfg, proxy.Options{})
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
		}
		if f.dump {
			for _, file := range cfg.Files {
				fmt.Fprintf(stdout, "# configuration file %s:\n%s", file.Path, file.Data)
				if len(file.Data) > 0 && file.Data[len(file.Data)-1] != '\n' {
					fmt.Fprintln(stdout)
				}
				fmt.Fprintln(stdout)
			}
			if f.conf == "" {
				fmt.Fprintf(stdout, "# configuration file %s:\n%s\n", confName, defaultConf)
			}
		}
		return 0
	}
	return serve(srv, cfg, load, stderr)
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
		fmt.Fprintf(w, "ngxsockify: [warn] %s\n", warn.String())
	}
}

// serve runs until a stop signal, handling reload and reopen like nginx.
func serve(srv *proxy.Server, cfg *nginxconf.Config, load func() (*nginxconf.Config, error), stderr io.Writer) int {
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stderr, "ngxsockify: [emerg] %v\n", err)
		srv.Close()
		return 1
	}
	pidFile := cfg.PID
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(stderr, "ngxsockify: [emerg] open() \"%s\" failed (%v)\n", pidFile, err)
			srv.Close()
			return 1
		}
		defer os.Remove(pidFile)
	}
	elog := srv.ErrorLog()
	elog.Logf(ngxlog.Notice, 0, "ngxsockify/%s started, listening on %v", Version, srv.Addrs())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, sigUSR1)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			elog.Logf(ngxlog.Notice, 0, "signal %d (SIGHUP) received, reconfiguring", syscall.SIGHUP)
			next, err := load()
			if err == nil {
				err = srv.Reload(next)
			}
			if err != nil {
				elog.Logf(ngxlog.Emerg, 0, "%v", err)
				elog.Logf(ngxlog.Notice, 0, "reconfiguration failed, the old configuration stays in effect")
				continue
			}
			for _, w := range next.Warnings {
				elog.Logf(ngxlog.Warn, 0, "%s", w.String())
			}
			if next.PID != pidFile && next.PID != "" {
				os.WriteFile(next.PID, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
			}
			elog = srv.ErrorLog()
			elog.Logf(ngxlog.Notice, 0, "reconfiguring done")
		case sigUSR1:
			elog.Logf(ngxlog.Notice, 0, "signal %d (SIGUSR1) received, reopening logs", sigUSR1)
			if err := srv.Reopen(); err != nil {
				elog.Logf(ngxlog.Alert, 0, "%v", err)
			}
		case syscall.SIGQUIT:
			elog.Logf(ngxlog.Notice, 0, "signal %d (SIGQUIT) received, shutting down gracefully", syscall.SIGQUIT)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			srv.Shutdown(ctx)
			cancel()
			return 0
		default:
			elog.Logf(ngxlog.Notice, 0, "signal %d received, exiting", sig.(syscall.Signal))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(ctx)
			cancel()
			return 0
		}
	}
	return 0
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

func goVersion() string {
	return runtimeVersion()
}
