//go:build linux

package main

import (
	"fmt"
	"os"
	"syscall"

	"ngxsockify/nginxconf"
	"ngxsockify/proxy"
)

// dropPrivileges takes on cfg.User once the listeners and log files are
// open, as nginx's workers do (ngx_worker_process_init): the log files
// become the user's (nginx's master does that when it reopens them), then
// setgid, the supplementary groups of initgroups, and setuid, which Go
// applies to every thread of the process. It returns the user taken on,
// or nil when there is none: not root, no user (not even the default), or
// master_process off (nginx's single process keeps its privileges).
//
// Unlike nginx, a failed initgroups is fatal: the process would keep
// root's groups.
//
// The pid file becomes the user's too, so that the process can still empty
// it at exit where it may not remove it (see removePID).
func dropPrivileges(srv *proxy.Server, cfg *nginxconf.Config, pidFile string) (*nginxconf.User, error) {
	u := cfg.User
	if u == nil || !cfg.MasterProcess || os.Geteuid() != 0 {
		return nil, nil
	}
	if err := srv.ChownLogs(u.UID); err != nil {
		return nil, err
	}
	if pidFile != "" {
		os.Chown(pidFile, u.UID, -1)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return nil, fmt.Errorf("setgid(%d) failed (%v)", u.GID, err)
	}
	if err := syscall.Setgroups(u.Groups); err != nil {
		return nil, fmt.Errorf("initgroups(%s, %d) failed (%v)", u.Name, u.GID, err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return nil, fmt.Errorf("setuid(%d) failed (%v)", u.UID, err)
	}
	return u, nil
}
