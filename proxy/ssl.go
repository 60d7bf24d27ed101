package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
)

// sslModule is nginx's ngx_http_ssl_module, for what it builds at load:
// each server's certificates, picked per connection by SNI.
var sslModule = module{
	name:      "ssl",
	provision: provisionCertificates,
}

// serverTLS is a server's runtime part of the ssl module.
type serverTLS struct {
	certs []tls.Certificate // ssl_certificate pairs, loaded
}

func provisionCertificates(_ *Server, st *state) error {
	for _, srv := range st.cfg.HTTP.Servers {
		if srv.TLS == nil {
			continue
		}
		rt := &st.servers[srv.ID].tls
		for _, cp := range srv.TLS.Certificates {
			c, err := tls.LoadX509KeyPair(cp.Cert, cp.Key)
			if err != nil {
				return fmt.Errorf(`cannot load certificate "%s": %w`, cp.Cert, err)
			}
			rt.certs = append(rt.certs, c)
		}
	}
	return nil
}

// certificate picks the certificate of the server that SNI names, else
// the first certificate of the address's servers.
func (s *Server) certificate(l *listener, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := s.state.Load()
	g := st.groupFor(l.spec, hello.Conn.LocalAddr())
	if g == nil {
		return nil, errors.New("no server for this address")
	}
	srv, _ := g.find(strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")))
	if certs := st.servers[srv.ID].tls.certs; len(certs) > 0 {
		return &certs[0], nil
	}
	for _, other := range g.servers {
		if certs := st.servers[other.ID].tls.certs; len(certs) > 0 {
			return &certs[0], nil
		}
	}
	return nil, errors.New(`no "ssl_certificate" is defined`)
}
