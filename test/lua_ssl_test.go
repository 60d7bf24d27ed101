package test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLuaCosocketTLS: cosockets' sslhandshake on nginx + lua and on
// ngxsockify, against a TLS server of the same config (lua-nginx-module's
// 129-ssl-socket.t runs the same against its own):
//   - lua_ssl_protocols: the default has no TLS 1.3 (and, at OpenSSL 3's
//     default security level, no TLS 1.0 or 1.1), TLSv1.3 gets it;
//   - lua_ssl_ciphers: an OpenSSL cipher string picks the TLS 1.2 suite;
//   - lua_ssl_verify_depth: the default 1 takes one intermediate, 0 none
//     ("20: unable to get local issuer certificate");
//   - lua_ssl_crl: a revoked certificate, an intermediate without a CRL;
//     a trusted file without a self-signed certificate trusts nothing;
//   - a session passed back resumes ("lua ssl set session", "SSL reused
//     session"); false asks for none; a second call on the socket answers
//     the session again;
//   - the debug lines nginx's debug build logs, collectgarbage() freeing
//     the session included;
//   - setclientcert: its argument checks, and the certificate it sets
//     passes ssl_verify_client (162-socket-tls-handshake.t TESTs 3-7);
//   - ngx.thread.spawn and kill in ssl_certificate_by_lua* (139-ssl-cert-by.t
//     TEST 26).
func TestLuaCosocketTLS(t *testing.T) {
	requireNgxsockify(t)
	pki := newTestPKI(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate_by_lua_block {
            local t = ngx.thread.spawn(function() ngx.sleep(1) end)
            local ok, err = ngx.thread.kill(t)
            ngx.log(ngx.INFO, "uthread kill: ", ok, " ", err, " ", select(2, ngx.thread.kill(t)))
        }
        location / { return 200 "$ssl_protocol $ssl_session_reused"; }
        location /cipher { return 200 "$ssl_protocol $ssl_cipher"; }
    }
    server {
        listen 127.0.0.1:{{PORT3}} ssl;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_protocols TLSv1.3;
        location / { return 200 "$ssl_protocol"; }
    }
    server {
        listen 127.0.0.1:{{PORT4}} ssl;
        ssl_certificate {{PKI}}/rsa.crt;
        ssl_certificate_key {{PKI}}/rsa.key;
        ssl_client_certificate {{PKI}}/root.crt;
        ssl_verify_client on;
        location / { return 200 "hello, $ssl_client_s_dn"; }
    }
    server {
        listen 127.0.0.1:{{PORT5}} ssl;
        ssl_certificate {{PKI}}/bob-chain.crt;
        ssl_certificate_key {{PKI}}/bob.key;
        location / { return 200 "verified"; }
    }
    server {
        listen 127.0.0.1:{{PORT6}} ssl;
        ssl_certificate {{PKI}}/mallory.crt;
        ssl_certificate_key {{PKI}}/mallory.key;
        location / { return 200 "revoked"; }
    }
    server {
        listen 127.0.0.1:{{PORT7}} ssl;
        ssl_certificate {{PKI}}/alice.crt;
        ssl_certificate_key {{PKI}}/alice.key;
        location / { return 200 "alice"; }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        lua_ssl_trusted_certificate {{PKI}}/root.crt;
        location /crl/ {
            lua_ssl_crl {{PKI}}/root.crl;
            location /crl/revoked { {{VERIFY PORT6}} }
            location /crl/good { {{VERIFY PORT7}} }
            location /crl/chain { {{VERIFY PORT5}} }
        }
        location /intonly {
            lua_ssl_trusted_certificate {{PKI}}/int.crt;
            {{VERIFY PORT5}}
        }
        location /depth0 {
            lua_ssl_verify_depth 0;
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{PORT5}}))
                ngx.say(sock:sslhandshake(false, nil, true))
            }
        }
        location = /depth {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{PORT5}}))
                ngx.say(sock:sslhandshake(false, nil, true))
            }
        }
        location /mtls {
            content_by_lua_block {
                local ssl = require "ngx.ssl"
                local sock = ngx.socket.tcp()
                ngx.say(sock:setclientcert("a", "b"))
                ngx.say(sock:setclientcert(nil, "b"))
                local chain = assert(ssl.parse_pem_cert([[{{PEM alice.crt}}]]))
                ngx.say(sock:setclientcert(chain, "b"))
                ngx.say(sock:setclientcert(chain, assert(ssl.parse_pem_priv_key([[{{PEM alice.key}}]]))))
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{PORT4}}))
                assert(sock:sslhandshake(false))
                sock:send("GET / HTTP/1.0\r\n\r\n")
                ngx.say((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            }
        }
        location / {
            content_by_lua_block {
                local function get(port, path, sess)
                    local sock = ngx.socket.tcp()
                    sock:settimeout(3000)
                    assert(sock:connect("127.0.0.1", port))
                    local s, err = sock:sslhandshake(sess, "rsa")
                    if not s then
                        return "failed: " .. err
                    end
                    sock:send("GET " .. path .. " HTTP/1.0\r\n\r\n")
                    local body = sock:receive("*a")
                    sock:close()
                    return body:match("\r\n\r\n(.*)$"), s
                end
                local port = tonumber(ngx.var.arg_port) or {{PORT2}}
                local first, sess = get(port, ngx.var.arg_path or "/")
                ngx.say(first, " ", type(sess))
                if ngx.var.arg_resume then
                    ngx.say((get(port, "/", sess)))
                end
                sess = nil
                collectgarbage()
            }
        }
        location /v13 {
            lua_ssl_protocols TLSv1.2 TLSv1.3;
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{PORT3}}))
                ngx.say(sock:sslhandshake(false))
                local s1 = sock:sslhandshake()
                ngx.say(type(s1), " ", sock:sslhandshake(s1) == s1)
                sock:send("GET / HTTP/1.0\r\n\r\n")
                ngx.say((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            }
        }
        location /aes128 {
            lua_ssl_ciphers "ECDHE+AESGCM:!AES256";
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{PORT2}}))
                assert(sock:sslhandshake(false))
                sock:send("GET /cipher HTTP/1.0\r\n\r\n")
                ngx.say((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            }
        }
        location /sha {
            lua_ssl_ciphers ECDHE-RSA-AES128-SHA;
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{PORT2}}))
                assert(sock:sslhandshake(false))
                sock:send("GET /cipher HTTP/1.0\r\n\r\n")
                ngx.say((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            }
        }
    }
`
	conf = regexp.MustCompile(`\{\{VERIFY (PORT\d)\}\}`).ReplaceAllString(conf, `content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(3000)
                assert(sock:connect("127.0.0.1", {{$1}}))
                ngx.say(sock:sslhandshake(false, nil, true))
            }`)
	conf = strings.ReplaceAll(conf, "{{PKI}}", pki.dir)
	pki.concat(t, "bob-chain.crt", "bob.crt", "int.crt")
	conf = regexp.MustCompile(`\{\{PEM ([a-z.]+)\}\}`).ReplaceAllStringFunc(conf, func(m string) string {
		data, err := os.ReadFile(pki.path(strings.TrimSuffix(strings.TrimPrefix(m, "{{PEM "), "}}")))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	})
	reqs := []struct{ path, want string }{
		{"/", "TLSv1.2 . cdata\n"},
		{"/?resume=1", "TLSv1.2 . cdata\nTLSv1.2 r\n"},
		{"/?port={{PORT3}}", "failed: handshake failed nil\n"},
		{"/v13", "true\ncdata true\nTLSv1.3\n"},
		{"/aes128", "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256\n"},
		{"/sha", "TLSv1.2 ECDHE-RSA-AES128-SHA\n"},
		{"/depth", "true\n"},
		{"/depth0", "nil20: unable to get local issuer certificate\n"},
		// lua_ssl_crl: every certificate of the chain against its
		// issuer's CRL; only trusted self-signed certificates anchor
		{"/crl/revoked", "nil23: certificate revoked\n"},
		{"/crl/good", "true\n"},
		{"/crl/chain", "nil3: unable to get certificate CRL\n"},
		{"/intonly", "nil2: unable to get issuer certificate\n"},
		{"/mtls", "nilbad cert arg: cdata expected, got string\n" +
			"nilclient certificate must be supplied with corresponding private key\n" +
			"nilbad pkey arg: cdata expected, got string\ntrue\nhello, CN=alice,O=Example\\, Inc.,C=DE\n"},
	}
	logs := []string{
		`SSL: TLSv1.2, cipher: "ECDHE-RSA-AES128-SHA TLSv1 Kx=ECDH Au=RSA Enc=AES(128) Mac=SHA1"`,
		`SSL: TLSv1.2, cipher: "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 Kx=ECDH Au=RSA Enc=AESGCM(128) Mac=AEAD"`,
		"lua ssl save session: ", "lua ssl set session: ", "SSL reused session", "lua ssl free session: ",
		"uthread kill: 1 nil already waited or killed",
	}
	for _, kind := range []string{"nginx", "ngxsockify"} {
		t.Run(kind, func(t *testing.T) {
			// debug lines at the main level too: "lua ssl free session" is
			// logged to the cycle's log, outside any request
			main := strings.Replace(wrapHTTP(conf), "error.log info;", "error.log debug;", 1)
			s := startServer(t, kind, ServerOptions{Main: main})
			defer func() {
				if t.Failed() {
					t.Log(tail(s.ErrorLog(), 40))
				}
			}()
			for _, r := range reqs {
				path := strings.ReplaceAll(r.path, "{{PORT3}}", strconv.Itoa(s.Ports[2]))
				_, got := httpBody(t, s.URL(path))
				if want := r.want; got != want {
					t.Errorf("%s: got %q, want %q", r.path, got, want)
				}
			}
			s.Stop()
			el := s.ErrorLog()
			for _, l := range logs {
				if !strings.Contains(el, l) {
					t.Errorf("error log lacks %q", l)
				}
			}
		})
	}
}

// TestLuaCosocketUnixConnectLog: a cosocket connect to a unix socket fails
// at once, and nginx's event module logs it ([crit] for a missing file,
// [error] when refused) where a TCP connect's failure is the Lua module's
// "connect() failed" (lua-nginx-module 059-unix-socket.t TEST 1).
func TestLuaCosocketUnixConnectLog(t *testing.T) {
	requireNgxsockify(t)
	conf := `
    server {
        listen 127.0.0.1:{{PORT}};
        location / {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                ngx.say(sock:connect("unix:{{DIR}}/nosuchfile.sock"))
            }
        }
    }
`
	re := regexp.MustCompile(`\[(crit|error)\] \d+#\d+: \*\d+ (connect\(\) .*?), client:`)
	var got []string
	for _, kind := range []string{"nginx", "ngxsockify"} {
		s := startServer(t, kind, ServerOptions{HTTP: conf})
		if _, body := httpBody(t, s.URL("/")); body != "nilno such file or directory\n" {
			t.Errorf("%s: body %q", kind, body)
		}
		s.Stop()
		var lines []string
		for _, m := range re.FindAllStringSubmatch(strings.ReplaceAll(s.ErrorLog(), s.Dir, "{{DIR}}"), -1) {
			lines = append(lines, m[1]+" "+m[2])
		}
		got = append(got, strings.Join(lines, "\n"))
	}
	if want := "crit connect() to unix:{{DIR}}/nosuchfile.sock failed (2: No such file or directory)"; got[0] != want || got[1] != want {
		t.Errorf("nginx logged %q, ngxsockify %q; want %q", got[0], got[1], want)
	}
}
