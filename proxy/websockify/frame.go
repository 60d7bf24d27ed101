package websockify

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// WebSocket close status codes the relay sends (RFC 6455 section 7.4.1;
// the names are those of the IANA registry it sets up). closeCode (policy.go)
// says which ends a tunnel; a client's own close code is echoed instead.
const (
	// CloseNormalClosure: the purpose of the connection is fulfilled; the
	// relay sends it when the target closes its side.
	CloseNormalClosure = 1000
	// CloseGoingAway: the server is going away; sent on Tunnels.Shutdown and
	// on the idle timeout.
	CloseGoingAway = 1001
	// CloseProtocolError: the client broke the WebSocket protocol.
	CloseProtocolError = 1002
	// CloseInvalidFramePayloadData: a message's data does not match its
	// type; sent on invalid base64.
	CloseInvalidFramePayloadData = 1007
	// CloseInternalError: the relay cannot go on (a failed read from or
	// write to the target, a send timeout towards it).
	CloseInternalError = 1011
)

// parser is the state of the client frame parser between socket reads. It
// never holds payload: data is unmasked and passed on as it arrives; only a
// partial header, a control frame payload (at most 125 bytes) and a partial
// base64 group are kept.
type parser struct {
	hdr       [14]byte
	hdrN      int
	inPayload bool
	remain    uint64
	mask      [4]byte
	maskPos   int
	op        byte
	fin       bool
	inMsg     bool       // a fragmented data message is in progress
	ctrl      *[125]byte // payload of the current control frame; nil between them
	ctrlN     int
	b64       [4]byte
	b64N      int
	b64Pad    bool // this frame's base64 ended with padding
}

// frameHeaderLen is the length of a client frame header given its second byte.
func frameHeaderLen(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// fromClient parses buf[i:end] (client bytes), relays data payload to the
// target and handles control frames. Payload is unmasked and compacted in
// place towards the start of buf (headroom keeps the write position behind
// the read position) and written to the target in one write. It reports
// whether the tunnel is over.
func (t *tunnel) fromClient(buf []byte, i, end int) (stop bool) {
	p := &t.p
	w := 0
	for i < end {
		if !p.inPayload {
			need := 2
			if p.hdrN >= 2 {
				need = frameHeaderLen(p.hdr[1])
			}
			k := copy(p.hdr[p.hdrN:need], buf[i:end])
			p.hdrN += k
			i += k
			if p.hdrN < need {
				continue
			}
			if need == 2 {
				if p.hdr[1]&0x80 == 0 {
					return t.fail(buf, w, fmt.Errorf("%w: unmasked client frame", ErrProtocol))
				}
				continue
			}
			if err := p.beginFrame(); err != nil {
				return t.fail(buf, w, err)
			}
			if p.remain > 0 {
				continue
			}
		} else {
			k := end - i
			if uint64(k) > p.remain {
				k = int(p.remain)
			}
			switch {
			case p.op >= opClose:
				unmask(buf[i:i+k], buf[i:i+k], p.mask, p.maskPos)
				if p.ctrl == nil {
					p.ctrl = new([125]byte)
				}
				p.ctrlN += copy(p.ctrl[p.ctrlN:], buf[i:i+k])
			case t.ending.Load():
				// Data after our close frame is dropped.
			case t.b64:
				unmask(buf[i:i+k], buf[i:i+k], p.mask, p.maskPos)
				var err error
				if w, err = p.decodeBase64(buf, w, buf[i:i+k]); err != nil {
					return t.fail(buf, w, err)
				}
			default:
				// Unmask and compact in one pass (w <= i).
				unmask(buf[w:w+k], buf[i:i+k], p.mask, p.maskPos)
				w += k
			}
			p.maskPos = (p.maskPos + k) & 3
			p.remain -= uint64(k)
			i += k
			if p.remain > 0 {
				continue
			}
		}
		// A frame is complete.
		p.inPayload = false
		var ctrl []byte
		if p.op >= opClose && p.ctrl != nil {
			ctrl = p.ctrl[:p.ctrlN]
			p.ctrl = nil // idle tunnels keep no control buffer
		}
		switch p.op {
		case opPing:
			if t.flush(buf[:w]) {
				return true
			}
			w = 0
			t.sendControl(opPong, ctrl)
		case opPong:
		case opClose:
			if t.flush(buf[:w]) {
				return true
			}
			w = 0
			return t.clientClosed(ctrl)
		default:
			if p.fin {
				p.inMsg = false
			}
			if t.b64 {
				var err error
				if w, err = p.endBase64(buf, w); err != nil {
					return t.fail(buf, w, err)
				}
			}
		}
	}
	return t.flush(buf[:w])
}

// beginFrame checks a complete header in p.hdr and starts the frame.
func (p *parser) beginFrame() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	p.hdrN = 0
	p.fin = b0&0x80 != 0
	p.op = b0 & 0x0f
	if b0&0x70 != 0 {
		return fmt.Errorf("%w: reserved bits set", ErrProtocol)
	}
	if b1&0x80 == 0 {
		return fmt.Errorf("%w: unmasked client frame", ErrProtocol)
	}
	var n uint64
	var maskAt int
	switch b1 & 0x7f {
	case 126:
		n, maskAt = uint64(binary.BigEndian.Uint16(p.hdr[2:])), 4
	case 127:
		n, maskAt = binary.BigEndian.Uint64(p.hdr[2:]), 10
		if n>>63 != 0 {
			return fmt.Errorf("%w: frame length %#x", ErrProtocol, n)
		}
	default:
		n, maskAt = uint64(b1&0x7f), 2
	}
	copy(p.mask[:], p.hdr[maskAt:maskAt+4])
	p.maskPos = 0
	p.remain = n
	switch p.op {
	case opClose, opPing, opPong:
		if !p.fin || n > 125 {
			return fmt.Errorf("%w: bad control frame (opcode %d, %d bytes)", ErrProtocol, p.op, n)
		}
		p.ctrlN = 0
	case opContinuation:
		if !p.inMsg {
			return fmt.Errorf("%w: continuation frame without a message", ErrProtocol)
		}
	case opText, opBinary:
		if p.inMsg {
			return fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
		}
		p.inMsg = !p.fin
	default:
		return fmt.Errorf("%w: unknown opcode %d", ErrProtocol, p.op)
	}
	p.b64Pad = false
	p.inPayload = true
	return nil
}

// decodeBase64 decodes the base64 text s (part of a data message) into
// buf[w:] and returns the new write position. Whole 4-character groups are
// decoded as they arrive; a partial group waits in p.b64.
func (p *parser) decodeBase64(buf []byte, w int, s []byte) (int, error) {
	if len(s) == 0 {
		return w, nil
	}
	if p.b64Pad {
		return w, fmt.Errorf("%w: data after padding", ErrBadBase64)
	}
	// encoding/base64 skips '\r' and '\n', which would make the result
	// depend on how reads split the text: they are invalid here.
	if bytes.IndexAny(s, "\r\n") >= 0 {
		return w, fmt.Errorf("%w: line break in base64 data", ErrBadBase64)
	}
	var tmp [768]byte
	if p.b64N > 0 {
		k := copy(p.b64[p.b64N:], s)
		p.b64N += k
		s = s[k:]
		if p.b64N < 4 {
			return w, nil
		}
		n, err := base64.StdEncoding.Decode(tmp[:], p.b64[:])
		if err != nil {
			return w, fmt.Errorf("%w: %v", ErrBadBase64, err)
		}
		w += copy(buf[w:], tmp[:n])
		p.b64N = 0
		if p.b64[3] == '=' {
			p.b64Pad = true
			if len(s) > 0 {
				return w, fmt.Errorf("%w: data after padding", ErrBadBase64)
			}
		}
	}
	whole := len(s) &^ 3
	for off := 0; off < whole; off += 1024 {
		chunk := s[off:min(off+1024, whole)]
		n, err := base64.StdEncoding.Decode(tmp[:], chunk)
		if err != nil {
			return w, fmt.Errorf("%w: %v", ErrBadBase64, err)
		}
		w += copy(buf[w:], tmp[:n])
		if chunk[len(chunk)-1] == '=' {
			p.b64Pad = true
			if off+len(chunk) < len(s) {
				return w, fmt.Errorf("%w: data after padding", ErrBadBase64)
			}
		}
	}
	p.b64N = copy(p.b64[:], s[whole:])
	return w, nil
}

// endBase64 ends a data frame in base64 mode: at the end of a message a
// partial group (unpadded base64) is decoded.
func (p *parser) endBase64(buf []byte, w int) (int, error) {
	if p.inMsg || p.b64N == 0 {
		return w, nil
	}
	n := p.b64N
	p.b64N = 0
	if n == 1 {
		return w, fmt.Errorf("%w: truncated group", ErrBadBase64)
	}
	var tmp [3]byte
	m, err := base64.RawStdEncoding.Decode(tmp[:], p.b64[:n])
	if err != nil {
		return w, fmt.Errorf("%w: %v", ErrBadBase64, err)
	}
	return w + copy(buf[w:], tmp[:m]), nil
}

// flush writes relayed payload to the target; it reports whether the tunnel is over.
func (t *tunnel) flush(b []byte) bool {
	if len(b) == 0 || t.ending.Load() {
		return false
	}
	if err := t.writeTarget(b); err != nil {
		t.targetWriteFailed(err)
		return true
	}
	return false
}

// fail relays what was parsed before a bad frame, then closes with the code
// for err (ErrProtocol or ErrBadBase64).
func (t *tunnel) fail(buf []byte, w int, err error) bool {
	t.flush(buf[:w])
	t.closeFor(err, false)
	return true
}

// clientClosed answers the client's close frame with the same status code.
func (t *tunnel) clientClosed(payload []byte) bool {
	code := CloseNormalClosure
	switch {
	case len(payload) == 1:
		t.closeFor(fmt.Errorf("%w: close frame of 1 byte", ErrProtocol), false)
		return true
	case len(payload) >= 2:
		code = int(binary.BigEndian.Uint16(payload))
		if !sendableCloseCode(code) {
			code = CloseProtocolError
		}
	}
	t.closeWith(code, nil, false)
	return true
}

// sendableCloseCode reports whether code may stand in a close frame (RFC
// 6455 section 7.4): not below 1000, not 1004 (reserved), 1005, 1006 or 1015
// (for APIs, never sent), nor anything else from 1016 to 2999 (unassigned)
// or from 5000 up.
func sendableCloseCode(code int) bool {
	switch {
	case code < CloseNormalClosure, code >= 5000:
		return false
	case code == 1004, code == 1005, code == 1006:
		return false
	case code >= 1015 && code < 3000:
		return false
	}
	return true
}

// sendControl writes a control frame (a pong) to the client at once.
func (t *tunnel) sendControl(op byte, payload []byte) {
	var frame [2 + 125]byte
	frame[0], frame[1] = 0x80|op, byte(len(payload))
	n := 2 + copy(frame[2:], payload)
	t.wmu.Lock()
	if t.closeSent {
		t.wmu.Unlock()
		return
	}
	w, err := t.writeClient(frame[:n], t.o.SendTimeout)
	t.sent.Add(int64(w))
	t.wmu.Unlock()
	if err != nil {
		t.clientWriteFailed(err)
	}
}

// unmask XORs src with the masking key starting at key offset pos into dst
// (dst may be src, or start before it). Eight bytes at a time.
func unmask(dst, src []byte, key [4]byte, pos int) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k32 = bits.RotateLeft32(k32, -8*pos)
	k64 := uint64(k32) | uint64(k32)<<32
	n := len(src)
	i := 0
	for ; i+64 <= n; i += 64 {
		s := src[i : i+64 : i+64]
		d := dst[i : i+64 : i+64]
		w0 := binary.LittleEndian.Uint64(s[0:])
		w1 := binary.LittleEndian.Uint64(s[8:])
		w2 := binary.LittleEndian.Uint64(s[16:])
		w3 := binary.LittleEndian.Uint64(s[24:])
		w4 := binary.LittleEndian.Uint64(s[32:])
		w5 := binary.LittleEndian.Uint64(s[40:])
		w6 := binary.LittleEndian.Uint64(s[48:])
		w7 := binary.LittleEndian.Uint64(s[56:])
		binary.LittleEndian.PutUint64(d[0:], w0^k64)
		binary.LittleEndian.PutUint64(d[8:], w1^k64)
		binary.LittleEndian.PutUint64(d[16:], w2^k64)
		binary.LittleEndian.PutUint64(d[24:], w3^k64)
		binary.LittleEndian.PutUint64(d[32:], w4^k64)
		binary.LittleEndian.PutUint64(d[40:], w5^k64)
		binary.LittleEndian.PutUint64(d[48:], w6^k64)
		binary.LittleEndian.PutUint64(d[56:], w7^k64)
	}
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k64)
	}
	for ; i < n; i++ {
		dst[i] = src[i] ^ byte(k32>>(8*(i&3)))
	}
}
