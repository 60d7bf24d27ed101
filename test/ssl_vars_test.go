package test

import "testing"

// TestSSLCertificateVariables: ssl_certificate and ssl_certificate_key with
// variables are evaluated per handshake: $ssl_server_name, a geo variable
// of the client's address, a map of the SNI name; a name whose files do
// not exist fails the handshake; a server without a certificate uses the
// default server's, evaluated for the connection.
func TestSSLCertificateVariables(t *testing.T) {
	pki := newTestPKI(t)
	conf := `
    geo $which {
        default localhost;
        10.0.0.0/8 alice;
    }
    map $ssl_server_name $by_sni {
        default localhost;
        rsa.test rsa;
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name default;
        ssl_certificate {{PKI}}/$which.crt;
        ssl_certificate_key {{PKI}}/$which.key;
        location / { return 200 "default|$ssl_server_name"; }
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name rsa.test other.test;
        ssl_certificate {{PKI}}/$by_sni.crt;
        ssl_certificate_key {{PKI}}/$by_sni.key;
        location / { return 200 "mapped|$ssl_server_name"; }
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name no_ctx;
        location / { return 200 "no_ctx"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_certificate {{PKI}}/$ssl_server_name.crt;
        ssl_certificate_key {{PKI}}/$ssl_server_name.key;
        location / { return 200 "by name|$ssl_server_name"; }
    }
`
	runSSLCase(t, pki, conf, []sslRequest{
		{name: "geo default", sni: "default", host: "default", want: "200 default|default", peerName: "localhost"},
		{name: "map by SNI", sni: "rsa.test", host: "rsa.test", want: "200 mapped|rsa.test", peerName: "rsa"},
		{name: "map default", sni: "other.test", host: "other.test", want: "200 mapped|other.test", peerName: "localhost"},
		{name: "no certificate: the default server's", sni: "no_ctx", host: "no_ctx", want: "200 no_ctx", peerName: "localhost"},
		{name: "by SNI name", port: 2, sni: "alice", want: "200 by name|alice", peerName: "alice"},
		{name: "no such files", port: 2, sni: "nx", want: "handshake failed"},
	})
}
