package websockify

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// parseChunks feeds client bytes to a tunnel's frame parser in the given
// chunks and returns what reached the target, what went back to the client
// and whether the parser ended the tunnel.
func parseChunks(b64 bool, chunks [][]byte) (toTarget, toClient []byte, stopped bool) {
	clientSide, relayClient := net.Pipe()
	relayTarget, targetSide := net.Pipe()
	var wg sync.WaitGroup
	var tgt, cli bytes.Buffer
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&tgt, targetSide) }()
	go func() { defer wg.Done(); io.Copy(&cli, clientSide) }()
	t := newTunnel(nil, relayClient, relayTarget, Options{BufferSize: 1 << 16, Logger: quiet}.withDefaults(), b64, nil)
	t.onGoroutines()
	buf := make([]byte, headroom+1<<16)
	for _, c := range chunks {
		n := copy(buf[headroom:], c)
		if t.fromClient(buf, headroom, headroom+n) {
			stopped = true
			break
		}
	}
	relayClient.Close()
	relayTarget.Close()
	wg.Wait()
	return tgt.Bytes(), cli.Bytes(), stopped
}

// FuzzParser checks that the parser never panics and that its output does
// not depend on how the client's bytes are split into socket reads.
func FuzzParser(f *testing.F) {
	var valid bytes.Buffer
	valid.Write(frame(true, opBinary, []byte("hello"), 0))
	valid.Write(frame(false, opText, []byte("YWJj"), 0))
	valid.Write(frame(true, opPing, []byte("p"), 0))
	valid.Write(frame(true, opContinuation, []byte("ZA=="), 8))
	valid.Write(frame(true, opBinary, nil, 0))
	valid.Write(frame(true, opBinary, bytes.Repeat([]byte("x"), 300), 0))
	f.Add(valid.Bytes(), uint16(3), false)
	f.Add(valid.Bytes(), uint16(17), true)
	f.Add(frame(true, opText, []byte("YQ=="), 0), uint16(2), true)
	f.Add(frame(true, opClose, []byte{3, 232}, 0), uint16(1), false)
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, uint16(5), false)
	f.Fuzz(func(t *testing.T, data []byte, split uint16, b64 bool) {
		if len(data) > 1<<16 {
			return
		}
		tgtWhole, cliWhole, stopWhole := parseChunks(b64, [][]byte{data})
		cut := 0
		if len(data) > 0 {
			cut = int(split) % len(data)
		}
		tgtSplit, cliSplit, stopSplit := parseChunks(b64, [][]byte{data[:cut], data[cut:]})
		if stopWhole != stopSplit {
			t.Fatalf("stopped whole=%v split=%v", stopWhole, stopSplit)
		}
		if !stopWhole && !bytes.Equal(tgtWhole, tgtSplit) {
			t.Fatalf("target bytes differ: whole %q split %q", tgtWhole, tgtSplit)
		}
		if !stopWhole && !bytes.Equal(cliWhole, cliSplit) {
			t.Fatalf("client bytes differ: whole %q split %q", cliWhole, cliSplit)
		}
		if len(data) <= 64 {
			var bytewise [][]byte
			for i := range data {
				bytewise = append(bytewise, data[i:i+1])
			}
			tgtBytes, _, stopBytes := parseChunks(b64, bytewise)
			if stopBytes != stopWhole || (!stopWhole && !bytes.Equal(tgtBytes, tgtWhole)) {
				t.Fatalf("byte by byte: stopped %v (whole %v), target %q (whole %q)", stopBytes, stopWhole, tgtBytes, tgtWhole)
			}
		}
	})
}
