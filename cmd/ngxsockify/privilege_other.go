//go:build !linux

package main

import (
	"errors"

	"ngxsockify/nginxconf"
	"ngxsockify/proxy"
)

// dropPrivileges refuses to serve as root with a user to take on: this
// build cannot change the user of every thread.
func dropPrivileges(_ *proxy.Server, cfg *nginxconf.Config, _ string) (*nginxconf.User, error) {
	if cfg.User == nil || !cfg.MasterProcess {
		return nil, nil
	}
	return nil, errors.New(`the "user" directive needs Linux here; run as the user instead, or with "master_process off;"`)
}
