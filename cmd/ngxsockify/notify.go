package main

import (
	"os"
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The service manager's readiness protocol (systemd's sd_notify, for
// Type=notify units; examples/systemd/ngxsockify.service): READY=1 once the
// listeners serve, RELOADING=1 (with the monotonic time systemd asks for)
// when SIGHUP starts a reload and READY=1 when it has ended, whether it
// took or not, and STOPPING=1 when a stop or quit signal arrives. Each is a
// datagram to the socket NOTIFY_SOCKET names; without that variable (not
// started by systemd) nothing is sent. A failed send is ignored as
// systemd's own clients do: the service keeps running, and a unit waiting
// for READY=1 times out and says so.

// notifyReady sends READY=1. upgraded is true in the new binary of a
// SIGUSR2 upgrade, a child of the service's main process: it names itself
// the main process (MAINPID=, which the units allow with NotifyAccess=all),
// so that systemd follows it once the old binary quits.
func notifyReady(upgraded bool) {
	state := daemon.SdNotifyReady
	if upgraded {
		state = "MAINPID=" + strconv.Itoa(os.Getpid()) + "\n" + state
	}
	daemon.SdNotify(false, state)
}

func notifyReloading() {
	daemon.SdNotify(false, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
}

func notifyStopping() { daemon.SdNotify(false, daemon.SdNotifyStopping) }
