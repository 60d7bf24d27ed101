package http1

// ReadBuffered reads into p what the connection already holds of the
// body (chunk framing taken off), never waiting for the client: nginx
// sends on, in one piece, what one read from the client brought, which
// may span several of the client's chunks. It returns 0 when nothing is
// there yet, and an error only for a malformed or failed body.
func (b *body) ReadBuffered(p []byte) (int, error) {
	n := 0
	for n < len(p) && !b.done && b.err == nil && !b.expect && b.br.Buffered() > 0 {
		b.nonblock = true
		m, err := b.Read(p[n:])
		b.nonblock = false
		n += m
		if err == errWouldBlock {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
