package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The "ngxsockify proxy_pass upgrade" column (-proxy-upgrade): ngxsockify
// relaying an upgraded connection through proxy_pass (the client's
// "Upgrade: raw" request goes to the target, which answers 101; then the
// bytes both ways as they are, on the same event loops as the websockify
// tunnels), next to its websockify_pass column: idle memory, throughput,
// handshakes.

// upgradeLocation is the server-level config of the column.
const upgradeLocation = `location /up {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection upgrade;
            proxy_read_timeout 1h;
        }`

// startUpgradeRelay runs ngxsockify with upgradeLocation.
func (b *bench) startUpgradeRelay(ngxBin string) (*relay, error) {
	cmd, addr, err := b.startWebsockify(ngxBin, b.dir, "ngxsockify-upgrade", b.workers, "", "access_log off;",
		fmt.Sprintf(upgradeLocation, b.target))
	if err != nil {
		return nil, err
	}
	return &relay{name: "ngxsockify proxy_pass upgrade", raw: addr, upgrade: "/up", pid: cmd.Process.Pid, maxIdle: 1 << 30, cmd: cmd}, nil
}

// upgradeRequest is what the client sends before the raw bytes.
const upgradeRequest = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\n"

// upgradeConn asks for the upgrade on c and reads the 101.
func upgradeConn(c net.Conn, path string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, upgradeRequest, path, c.RemoteAddr()); err != nil {
		return err
	}
	head, err := readHead(c)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
		line, _, _ := strings.Cut(string(head), "\r\n")
		return fmt.Errorf("bad answer %q", line)
	}
	return nil
}

// readHead reads an HTTP head byte by byte, so that nothing after it is
// consumed.
func readHead(c net.Conn) ([]byte, error) {
	var head []byte
	var b [1]byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) > 4096 {
			return nil, errors.New("head too long")
		}
		if _, err := c.Read(b[:]); err != nil {
			return nil, err
		}
		head = append(head, b[0])
	}
	return head, nil
}

// targetUpgrade answers an upgrade request whose first byte ('G') was
// read: the rest of its head, then the 101. The connection then speaks the
// target's protocol.
func targetUpgrade(c net.Conn) error {
	if _, err := readHead(c); err != nil {
		return err
	}
	_, err := c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: upgrade\r\n\r\n"))
	return err
}
