package nsqd_test

// AUTH against a test auth server: go-nsq allowed and denied, every
// refusal of the raw protocol, TTL expiry, auth servers down or answering
// garbage (nobody gets in), and the HTTP API's credentials.

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// authz is one authorization in an auth server answer.
type authz struct {
	Topic       string   `json:"topic"`
	Channels    []string `json:"channels"`
	Permissions []string `json:"permissions"`
}

var (
	pubSubAll  = authz{".*", []string{".*"}, []string{"publish", "subscribe"}}
	pubAllowed = authz{"^allowed$", []string{".*"}, []string{"publish"}}
	subAllowed = authz{"^allowed$", []string{"^c$"}, []string{"subscribe"}}
)

// authAnswer builds an auth server's JSON answer.
func authAnswer(ttl int, identity string, auths ...authz) string {
	if auths == nil {
		auths = []authz{}
	}
	b, _ := json.Marshal(map[string]any{
		"ttl": ttl, "identity": identity, "identity_url": "https://example.com/" + identity, "authorizations": auths,
	})
	return string(b)
}

// testAuthServer answers NSQ auth queries from a table of secrets and
// records every query it gets.
type testAuthServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter)
	queries []url.Values
	methods []string
}

func startAuthServer(t testing.TB) *testAuthServer {
	a := &testAuthServer{answers: map[string]func(http.ResponseWriter){}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *testAuthServer) serve(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if r.Method == http.MethodPost {
		v = url.Values{}
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
	}
	a.mu.Lock()
	a.queries = append(a.queries, v)
	a.methods = append(a.methods, r.Method+" "+r.URL.Path+" "+r.Header.Get("Accept"))
	answer := a.answers[v.Get("secret")]
	a.mu.Unlock()
	if answer == nil {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"NOT_AUTHORIZED"}`)
		return
	}
	answer(w)
}

// set makes the server answer secret with status and body.
func (a *testAuthServer) set(secret string, status int, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answers[secret] = func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func (a *testAuthServer) allow(secret string, ttl int, auths ...authz) {
	a.set(secret, http.StatusOK, authAnswer(ttl, "id-"+secret, auths...))
}

func (a *testAuthServer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queries)
}

func (a *testAuthServer) last(t testing.TB) (url.Values, string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queries) == 0 {
		t.Fatal("the auth server got no query")
	}
	return a.queries[len(a.queries)-1], a.methods[len(a.methods)-1]
}

// hostPort is the server's address as --auth-http-address takes it.
func (a *testAuthServer) hostPort() string { return strings.TrimPrefix(a.URL, "http://") }

// deadAddr is an address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startAuthNSQD(t testing.TB, addrs []string, mutate func(*nsqd.Config)) *nsqtest.NSQD {
	return nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.AuthHTTPAddresses = addrs
		c.HTTPClientRequestTimeout = 2 * time.Second
		if mutate != nil {
			mutate(c)
		}
	})
}

func authCmd(secret string) []byte { return wire.AppendCommand(nil, "AUTH", []byte(secret)) }

// TestGoNSQAuth runs go-nsq producers and consumers with AuthSecret.
func TestGoNSQAuth(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("full", 3600, pubSubAll)
	as.allow("narrow", 3600, pubAllowed, subAllowed)
	as.allow("none", 3600)
	n := startAuthNSQD(t, []string{as.hostPort()}, nil)
	withSecret := func(s string) *nsq.Config {
		c := nsq.NewConfig()
		c.AuthSecret = s
		return c
	}

	t.Run("allowed", func(t *testing.T) {
		p := newProducerConfig(t, n.TCPAddr, withSecret("full"))
		want := numbered("a", 20)
		if err := p.MultiPublish("t", want[:10]); err != nil {
			t.Fatal(err)
		}
		for _, m := range want[10:] {
			if err := p.Publish("t", m); err != nil {
				t.Fatal(err)
			}
		}
		in := newInbox()
		startConsumer(t, n.TCPAddr, "t", "c", withSecret("full"), 1, in.handler(false))
		checkSet(t, in.bodies(t, len(want), 5*time.Second), want)
		cs := mustChannelStats(t, n, "t", "c").Clients[0]
		if !cs.Authed || cs.AuthIdentity != "id-full" || cs.AuthIdentityURL != "https://example.com/id-full" {
			t.Errorf("stats authed %v identity %q url %q", cs.Authed, cs.AuthIdentity, cs.AuthIdentityURL)
		}
	})
	t.Run("narrow", func(t *testing.T) {
		p := newProducerConfig(t, n.TCPAddr, withSecret("narrow"))
		if err := p.Publish("allowed", []byte("yes")); err != nil {
			t.Fatalf("Publish to allowed: %v", err)
		}
		in := newInbox()
		startConsumer(t, n.TCPAddr, "allowed", "c", withSecret("narrow"), 1, in.handler(false))
		if got := in.bodies(t, 1, 5*time.Second); got[0] != "yes" {
			t.Errorf("got %q", got)
		}
	})
	refused := []struct {
		name, secret, topic, want string
		sub                       bool
	}{
		{"publish to another topic", "narrow", "other", "E_UNAUTHORIZED", false},
		{"subscribe to another channel", "narrow", "allowed", "E_UNAUTHORIZED", true},
		{"unknown secret", "wrong", "allowed", "E_AUTH_FAILED", false},
		{"no authorizations", "none", "allowed", "E_UNAUTHORIZED", false},
		{"no secret", "", "allowed", "Auth Required", false},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.sub {
				c, cerr := nsq.NewConsumer(tt.topic, "elsewhere", withSecret(tt.secret))
				if cerr != nil {
					t.Fatal(cerr)
				}
				c.SetLogger(newGoNSQLogger(t), nsq.LogLevelError)
				c.AddHandler(nsq.HandlerFunc(func(*nsq.Message) error { return nil }))
				// go-nsq does not wait for SUB's answer: the refusal
				// closes the connection afterwards.
				if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
					t.Fatal(err)
				}
				nsqtest.Eventually(t, 5*time.Second, "the refused consumer disconnected", func() bool { return c.Stats().Connections == 0 })
				c.Stop()
				if _, ok := channelStats(n, tt.topic, "elsewhere"); ok {
					t.Errorf("channel %s/elsewhere created", tt.topic)
				}
				return
			} else {
				err = newProducerConfig(t, n.TCPAddr, withSecret(tt.secret)).Publish(tt.topic, []byte("no"))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if ts, ok := topicStats(n, "other"); ok && ts.MessageCount > 0 {
		t.Errorf("topic other has %d messages", ts.MessageCount)
	}
}

// TestGoNSQAuthTLS passes the TLS state and the client certificate's
// common name to the auth server, with go-nsq over TLS and snappy.
func TestGoNSQAuthTLS(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"get", "post"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			pki := newTestPKI(t)
			as := startAuthServer(t)
			as.allow("s", 3600, pubSubAll)
			n := startAuthNSQD(t, []string{as.URL + "/custom"}, func(c *nsqd.Config) {
				pki.server(c)
				c.TLSClientAuthPolicy, c.TLSRootCAFile = "require-verify", pki.caFile
				c.AuthHTTPRequestMethod = method
			})
			cfg := nsq.NewConfig()
			cfg.TlsV1, cfg.TlsConfig, cfg.Snappy, cfg.AuthSecret = true, pki.clientTLS(pki.client), true, "s"
			if err := newProducerConfig(t, n.TCPAddr, cfg).Publish("t", []byte("x")); err != nil {
				t.Fatal(err)
			}
			q, how := as.last(t)
			want := url.Values{"secret": {"s"}, "tls": {"true"}, "remote_ip": {"127.0.0.1"}, "common_name": {pki.clientName}}
			if fmt.Sprint(q) != fmt.Sprint(want) {
				t.Errorf("query %v, want %v", q, want)
			}
			wantHow := strings.ToUpper(method) + " /custom application/vnd.nsq; version=1.0"
			if how != wantHow {
				t.Errorf("request %q, want %q", how, wantHow)
			}
		})
	}
}

// TestProtocolAuth checks AUTH and every auth refusal byte for byte.
func TestProtocolAuth(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("full", 3600, pubSubAll)
	as.allow("narrow", 3600, pubAllowed, subAllowed)
	as.allow("sub-only", 3600, authz{".*", []string{".*"}, []string{"subscribe"}})
	as.allow("pub-no-empty-channel", 3600, authz{".*", []string{"^c$"}, []string{"publish"}})
	as.allow("none", 3600)
	n := startAuthNSQD(t, []string{as.hostPort()}, nil)

	tests := []struct {
		name  string
		in    []byte
		want  []string
		fatal bool
	}{
		{"AUTH", authCmd("full"), []string{`{"identity":"id-full","identity_url":"https://example.com/id-full","permission_count":1}`}, false},
		{"AUTH narrow", authCmd("narrow"), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`}, false},
		{"AUTH twice", cat(authCmd("full"), authCmd("full")), []string{`{"identity":"id-full","identity_url":"https://example.com/id-full","permission_count":1}`, "E_INVALID AUTH already set"}, true},
		{"AUTH unknown secret", authCmd("wrong"), []string{"E_AUTH_FAILED AUTH failed"}, true},
		{"AUTH no authorizations", authCmd("none"), []string{"E_UNAUTHORIZED AUTH no authorizations found"}, true},
		{"AUTH after SUB", cat(authCmd("full"), line("SUB t c"), authCmd("full")), []string{`{"identity":"id-full","identity_url":"https://example.com/id-full","permission_count":1}`, "OK", "E_INVALID cannot AUTH in current state"}, true},
		{"PUB first", wire.AppendCommand(nil, "PUB", []byte("x"), "t"), []string{"E_AUTH_FIRST AUTH required before PUB"}, true},
		{"DPUB first", wire.AppendCommand(nil, "DPUB", []byte("x"), "t", "0"), []string{"E_AUTH_FIRST AUTH required before DPUB"}, true},
		// MPUB is checked before its body is read.
		{"MPUB first", line("MPUB t"), []string{"E_AUTH_FIRST AUTH required before MPUB"}, true},
		{"SUB first", line("SUB t c"), []string{"E_AUTH_FIRST AUTH required before SUB"}, true},
		{"NOP needs no AUTH", line("NOP"), nil, false},
		{"PUB allowed", cat(authCmd("narrow"), wire.AppendCommand(nil, "PUB", []byte("x"), "allowed")), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`, "OK"}, false},
		{"PUB denied topic", cat(authCmd("narrow"), wire.AppendCommand(nil, "PUB", []byte("x"), "other")), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`, `E_UNAUTHORIZED AUTH failed for PUB on "other" ""`}, true},
		{"MPUB denied topic", cat(authCmd("narrow"), line("MPUB other")), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`, `E_UNAUTHORIZED AUTH failed for MPUB on "other" ""`}, true},
		{"DPUB denied topic", cat(authCmd("narrow"), wire.AppendCommand(nil, "DPUB", []byte("x"), "other", "10")), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`, `E_UNAUTHORIZED AUTH failed for DPUB on "other" ""`}, true},
		{"SUB denied channel", cat(authCmd("narrow"), line("SUB allowed d")), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`, `E_UNAUTHORIZED AUTH failed for SUB on "allowed" "d"`}, true},
		{"SUB allowed", cat(authCmd("narrow"), line("SUB allowed c")), []string{`{"identity":"id-narrow","identity_url":"https://example.com/id-narrow","permission_count":2}`, "OK"}, false},
		{"PUB with subscribe only", cat(authCmd("sub-only"), wire.AppendCommand(nil, "PUB", []byte("x"), "t")), []string{`{"identity":"id-sub-only","identity_url":"https://example.com/id-sub-only","permission_count":1}`, `E_UNAUTHORIZED AUTH failed for PUB on "t" ""`}, true},
		// NSQ's trap: publishing matches the channel regexes against "".
		{"PUB without a channel regex matching empty", cat(authCmd("pub-no-empty-channel"), wire.AppendCommand(nil, "PUB", []byte("x"), "t")), []string{`{"identity":"id-pub-no-empty-channel","identity_url":"https://example.com/id-pub-no-empty-channel","permission_count":1}`, `E_UNAUTHORIZED AUTH failed for PUB on "t" ""`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRawConn(t, n.TCPAddr)
			c.write(tt.in)
			for _, w := range tt.want {
				c.expect(w)
			}
			if tt.fatal {
				c.expectClosed()
			} else if nsqtest.IsClosed(c.nc, 200*time.Millisecond) {
				t.Fatalf("connection closed, want it open")
			}
		})
	}
	if ts, ok := topicStats(n, "other"); ok && ts.MessageCount > 0 {
		t.Errorf("topic other has %d messages", ts.MessageCount)
	}

	t.Run("IDENTIFY says auth_required", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		if reply := c.identify(map[string]any{}); reply["auth_required"] != true {
			t.Errorf("auth_required = %v", reply["auth_required"])
		}
	})
}

// TestProtocolAuthFailsClosed: auth servers that are down, slow, or answer
// anything but a valid grant let nobody in.
func TestProtocolAuthFailsClosed(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("ok", 3600, pubSubAll)
	as.set("not json", 200, `{"ttl": 60, "authorizations": [`)
	as.set("html", 200, `<html>hello</html>`)
	as.set("null", 200, `null`)
	as.set("ttl 0", 200, authAnswer(0, "x", pubSubAll))
	as.set("ttl negative", 200, authAnswer(-5, "x", pubSubAll))
	as.set("no ttl", 200, `{"identity":"x","authorizations":[{"topic":".*","channels":[".*"],"permissions":["publish"]}]}`)
	as.set("unknown permission", 200, authAnswer(60, "x", authz{".*", []string{".*"}, []string{"publish", "admin"}}))
	as.set("bad topic regex", 200, authAnswer(60, "x", authz{"(", []string{".*"}, []string{"publish"}}))
	as.set("bad channel regex", 200, authAnswer(60, "x", authz{".*", []string{"[z-a]"}, []string{"publish"}}))
	as.set("status 500", 500, authAnswer(60, "x", pubSubAll))
	as.set("status 201", 201, authAnswer(60, "x", pubSubAll))
	as.set("huge", 200, `{"ttl":60,"identity":"`+strings.Repeat("x", 2<<20)+`"}`)
	as.answers["slow"] = func(w http.ResponseWriter) { time.Sleep(3 * time.Second) }

	n := startAuthNSQD(t, []string{as.hostPort()}, func(c *nsqd.Config) { c.HTTPClientRequestTimeout = 500 * time.Millisecond })
	down := startAuthNSQD(t, []string{deadAddr(t), deadAddr(t)}, nil)
	for _, secret := range []string{"not json", "html", "null", "ttl 0", "ttl negative", "no ttl", "unknown permission",
		"bad topic regex", "bad channel regex", "status 500", "status 201", "huge", "slow", "unknown"} {
		t.Run(secret, func(t *testing.T) {
			t.Parallel()
			c := dialRawConn(t, n.TCPAddr)
			c.write(cat(authCmd(secret), wire.AppendCommand(nil, "PUB", []byte("x"), "t")))
			c.expect("E_AUTH_FAILED AUTH failed")
			c.expectClosed()
		})
	}
	t.Run("servers down", func(t *testing.T) {
		t.Parallel()
		c := dialRawConn(t, down.TCPAddr)
		c.write(authCmd("ok"))
		c.expect("E_AUTH_FAILED AUTH failed")
		c.expectClosed()
	})
	t.Run("one server down", func(t *testing.T) {
		t.Parallel()
		m := startAuthNSQD(t, []string{deadAddr(t), as.hostPort(), deadAddr(t)}, nil)
		for range 5 { // the first server tried is random
			c := dialRawConn(t, m.TCPAddr)
			c.write(cat(authCmd("ok"), wire.AppendCommand(nil, "PUB", []byte("x"), "t")))
			c.expect(`{"identity":"id-ok","identity_url":"https://example.com/id-ok","permission_count":1}`)
			c.expect("OK")
		}
	})
	for name, nd := range map[string]*nsqtest.NSQD{"garbage": n, "down": down} {
		if ts, ok := topicStats(nd, "t"); ok && ts.MessageCount > 0 {
			t.Errorf("%s: topic t has %d messages", name, ts.MessageCount)
		}
	}
}

// TestProtocolAuthTTL re-queries the auth server once the TTL has passed:
// a grant withdrawn meanwhile, or an auth server gone, stops the client.
func TestProtocolAuthTTL(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("s", 1, pubSubAll)
	n := startAuthNSQD(t, []string{as.hostPort()}, nil)

	// dialAuthed connects and AUTHs with secret "s", skipping the reply.
	dialAuthed := func(t *testing.T) *rawConn {
		t.Helper()
		c := dialRawConn(t, n.TCPAddr)
		c.write(authCmd("s"))
		c.frame()
		return c
	}
	// pubUntilRefused publishes every 50 ms until the server refuses and
	// returns the refusal and how long it took.
	pubUntilRefused := func(c *rawConn) (string, time.Duration) {
		start := time.Now()
		for time.Since(start) < 5*time.Second {
			c.send("PUB", []byte("x"), "t")
			typ, data := c.frame()
			if typ == wire.FrameError {
				return string(data), time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("still publishing 5 s after AUTH with a TTL of 1 s")
		return "", 0
	}

	t.Run("grant withdrawn", func(t *testing.T) {
		c := dialAuthed(t)
		before := as.count()
		c.send("PUB", []byte("x"), "t")
		c.expect("OK")
		as.allow("s", 1, subAllowed) // publish withdrawn
		refusal, after := pubUntilRefused(c)
		if refusal != `E_UNAUTHORIZED AUTH failed for PUB on "t" ""` {
			t.Errorf("refusal %q", refusal)
		}
		if after < 500*time.Millisecond {
			t.Errorf("refused after %v, before the TTL ran out", after)
		}
		if as.count() <= before {
			t.Errorf("the auth server was not asked again")
		}
		c.expectClosed()
	})
	t.Run("server gone", func(t *testing.T) {
		as.allow("s", 1, pubSubAll)
		c := dialAuthed(t)
		as.set("s", http.StatusServiceUnavailable, "down")
		if refusal, _ := pubUntilRefused(c); refusal != "E_AUTH_FAILED AUTH failed" {
			t.Errorf("refusal %q", refusal)
		}
		c.expectClosed()
	})
	t.Run("renewed", func(t *testing.T) {
		as.allow("s", 1, pubSubAll)
		c := dialAuthed(t)
		before := as.count()
		nsqtest.Eventually(t, 5*time.Second, "a re-query after the TTL", func() bool {
			c.send("PUB", []byte("x"), "t")
			c.expect("OK")
			return as.count() > before
		})
	})
}

// TestAuthTLSRequiredRetry follows an auth server's 403 TLS_REQUIRED to
// its HTTPS port, trusting it through --tls-root-ca-file.
func TestAuthTLSRequiredRetry(t *testing.T) {
	t.Parallel()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("secret") == "s" {
			io.WriteString(w, authAnswer(60, "tls-id", pubSubAll))
			return
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(secure.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(secure.URL, "https://"))
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"message": "TLS_REQUIRED", "https_port": %s}`, port)
	}))
	t.Cleanup(plain.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startAuthNSQD(t, []string{strings.TrimPrefix(plain.URL, "http://")}, func(c *nsqd.Config) { c.TLSRootCAFile = ca })
	c := dialRawConn(t, n.TCPAddr)
	c.write(authCmd("s"))
	c.expect(`{"identity":"tls-id","identity_url":"https://example.com/tls-id","permission_count":1}`)
}

// TestHTTPAuth: with auth on, the HTTP API wants the secret (header or
// query) and the same permissions as the TCP protocol; /ping and /info
// stay open.
func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("full", 3600, pubSubAll)
	as.allow("narrow", 3600, pubAllowed, subAllowed)
	as.allow("none", 3600)
	n := startAuthNSQD(t, []string{as.hostPort()}, func(c *nsqd.Config) { c.AuthHTTPProtectStats = true })
	base := "http://" + n.HTTPAddr
	bearer := func(s string) []string { return []string{"Authorization", "Bearer " + s} }

	tests := []struct {
		method, path string
		hdr          []string
		status       int
		body         string
	}{
		{"GET", "/ping", nil, 200, "OK"},
		{"GET", "/info", nil, 200, ""},
		{"GET", "/stats", nil, 401, httpErr("AUTH_REQUIRED")},
		{"GET", "/stats", bearer("wrong"), 401, httpErr("AUTH_FAILED")},
		{"GET", "/stats", bearer("none"), 403, httpErr("UNAUTHORIZED")},
		{"GET", "/stats?format=json", bearer("narrow"), 200, ""},
		{"GET", "/stats?secret=full", nil, 200, ""},
		{"GET", "/stats", []string{"Authorization", "Basic Zm9vOmJhcg=="}, 401, httpErr("AUTH_REQUIRED")},
		{"GET", "/config/msg_timeout", nil, 401, httpErr("AUTH_REQUIRED")},
		{"GET", "/config/msg_timeout", bearer("full"), 200, "60000000000"},
		{"POST", "/pub?topic=allowed", bearer("narrow"), 200, "OK"},
		{"POST", "/pub?topic=allowed&secret=narrow", nil, 200, "OK"},
		{"POST", "/pub?secret=narrow&topic=allowed&defer=10", nil, 200, "OK"},
		{"POST", "/pub?topic=allowed&secret=na%72row", nil, 200, "OK"},
		{"POST", "/pub?topic=other", bearer("narrow"), 403, httpErr("UNAUTHORIZED")},
		{"POST", "/pub?topic=allowed", nil, 401, httpErr("AUTH_REQUIRED")},
		{"POST", "/pub?topic=allowed", bearer("wrong"), 401, httpErr("AUTH_FAILED")},
		{"POST", "/pub", bearer("narrow"), 400, httpErr("MISSING_ARG_TOPIC")},
		{"POST", "/mpub?topic=allowed", bearer("narrow"), 200, "OK"},
		{"POST", "/mpub?topic=other", bearer("narrow"), 403, httpErr("UNAUTHORIZED")},
		{"POST", "/topic/create?topic=allowed", bearer("narrow"), 200, ""},
		{"POST", "/topic/create?topic=other", bearer("narrow"), 403, httpErr("UNAUTHORIZED")},
		{"POST", "/channel/create?topic=allowed&channel=c", bearer("narrow"), 200, ""},
		{"POST", "/channel/create?topic=allowed&channel=d", bearer("narrow"), 403, httpErr("UNAUTHORIZED")},
		{"POST", "/channel/create?topic=allowed", bearer("narrow"), 400, httpErr("MISSING_ARG_CHANNEL")},
		{"POST", "/channel/create?topic=allowed&channel=c", bearer("none"), 403, httpErr("UNAUTHORIZED")},
		{"GET", "/nope", nil, 401, httpErr("AUTH_REQUIRED")},
		{"GET", "/nope", bearer("full"), 404, httpErr("NOT_FOUND")},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+strings.Join(tt.hdr, " "), func(t *testing.T) {
			body := any(nil)
			if tt.method == "POST" {
				body = "msg\n"
			}
			r := httpRequest(t, tt.method, base+tt.path, body, tt.hdr...)
			if r.status != tt.status || tt.body != "" && r.body != tt.body {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, r.status, r.body, tt.status, tt.body)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("answers are cached for the TTL", func(t *testing.T) {
		as.allow("cached", 3600, pubSubAll)
		before := as.count()
		for range 5 {
			if r := httpRequest(t, "POST", base+"/pub?topic=x", "m", bearer("cached")...); r.status != 200 {
				t.Fatalf("pub: %d %s", r.status, r.body)
			}
		}
		if got := as.count() - before; got != 1 {
			t.Errorf("%d auth queries for 5 requests, want 1", got)
		}
	})
}

// TestHTTPAuthNothingChanges sends every request that changes something
// without valid credentials (none, wrong, auth server down, answering
// garbage) and checks that nothing changed.
func TestHTTPAuthNothingChanges(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("reader", 3600, authz{"^nothing$", []string{"^nothing$"}, []string{"subscribe"}})
	as.set("garbage", 200, "garbage")
	servers := map[string]*nsqtest.NSQD{
		"up":   startAuthNSQD(t, []string{as.hostPort()}, nil),
		"down": startAuthNSQD(t, []string{deadAddr(t)}, nil),
	}
	requests := []struct{ method, path string }{
		{"POST", "/pub?topic=t"}, {"POST", "/pub?topic=new"}, {"POST", "/mpub?topic=t"}, {"POST", "/mpub?topic=t&binary=false"},
		{"POST", "/topic/create?topic=new"}, {"POST", "/topic/delete?topic=t"}, {"POST", "/topic/empty?topic=t"},
		{"POST", "/topic/pause?topic=t"}, {"POST", "/topic/unpause?topic=paused"},
		{"POST", "/channel/create?topic=t&channel=new"}, {"POST", "/channel/delete?topic=t&channel=c"},
		{"POST", "/channel/empty?topic=t&channel=c"}, {"POST", "/channel/pause?topic=t&channel=c"},
		{"POST", "/channel/unpause?topic=paused&channel=c"},
		{"PUT", "/config/log_level"}, {"PUT", "/config/nsqlookupd_tcp_addresses"},
		{"PUT", "/debug/setblockrate?rate=1"}, {"POST", "/debug/freememory"},
	}
	credentials := map[string][]string{
		"none":         nil,
		"wrong":        {"Authorization", "Bearer wrong"},
		"wrong query":  nil,
		"garbage":      {"Authorization", "Bearer garbage"},
		"insufficient": {"Authorization", "Bearer reader"},
		"empty bearer": {"Authorization", "Bearer "},
	}
	for name, n := range servers {
		t.Run(name, func(t *testing.T) {
			tp, err := n.Topic("t")
			if err != nil {
				t.Fatal(err)
			}
			tp.Publish([]byte("kept"), 0)
			if _, err := tp.Channel("c"); err != nil {
				t.Fatal(err)
			}
			pt, _ := n.Topic("paused")
			pt.Pause()
			pc, _ := pt.Channel("c")
			pc.Pause()
			before := n.Stats(nsqd.StatsFilter{})
			logLevel := n.Config.LogLevel
			for _, rq := range requests {
				for cname, hdr := range credentials {
					path := rq.path
					if cname == "wrong query" {
						sep := "?"
						if strings.Contains(path, "?") {
							sep = "&"
						}
						path += sep + "secret=wrong"
					}
					if cname == "insufficient" && !strings.Contains(path, "topic=") {
						continue // server-wide: any accepted secret will do
					}
					r := httpRequest(t, rq.method, "http://"+n.HTTPAddr+path, `"debug"`, hdr...)
					if r.status != 401 && r.status != 403 {
						t.Errorf("%s %s with %s credentials: %d %s, want 401 or 403", rq.method, path, cname, r.status, r.body)
					}
				}
			}
			after := n.Stats(nsqd.StatsFilter{})
			b1, _ := json.Marshal(before.Topics)
			b2, _ := json.Marshal(after.Topics)
			if string(b1) != string(b2) {
				t.Errorf("topics changed:\nbefore %s\nafter  %s", b1, b2)
			}
			if n.Config.LogLevel != logLevel {
				t.Errorf("log level changed")
			}
		})
	}
}

// TestHTTPAuthStatsOpenByDefault: with auth on but without
// --auth-http-protect-stats, the read-only /stats and /metrics answer
// without a secret (NSQ's monitoring tools send none), while writes still
// need one.
func TestHTTPAuthStatsOpenByDefault(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("full", 3600, pubSubAll)
	n := startAuthNSQD(t, []string{as.hostPort()}, nil)
	base := "http://" + n.HTTPAddr
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/stats?format=json", 200},
		{"GET", "/metrics", 200},
		{"POST", "/pub?topic=allowed", 401},
		{"GET", "/config/msg_timeout", 401},
		{"POST", "/stats", 401},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
}

// TestHTTPAuthAdminIdentity: with --auth-admin-identity, only those
// identities may change the server over HTTP (PUT /config, /debug); any
// accepted secret still reads /config, and publishing keeps its own rule.
func TestHTTPAuthAdminIdentity(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t)
	as.allow("ops", 3600, pubSubAll) // identity id-ops
	as.allow("app", 3600, pubSubAll) // identity id-app, same permissions
	as.allow("none", 3600)           // accepted, no authorization
	n := startAuthNSQD(t, []string{as.hostPort()}, func(c *nsqd.Config) { c.AuthAdminIdentities = []string{"id-ops"} })
	base := "http://" + n.HTTPAddr
	bearer := func(s string) []string { return []string{"Authorization", "Bearer " + s} }
	logLevel := func() string {
		t.Helper()
		return httpRequest(t, "GET", base+"/config/log_level", nil, bearer("app")...).body
	}
	before := logLevel()

	tests := []struct {
		method, path, secret string
		body                 any
		status               int
	}{
		{"PUT", "/config/log_level", "app", "debug", 403},
		{"PUT", "/config/log_level", "none", "debug", 403},
		{"PUT", "/config/nsqlookupd_tcp_addresses", "app", `["127.0.0.1:1"]`, 403},
		{"GET", "/debug/pprof/", "app", nil, 403},
		{"POST", "/debug/freememory", "app", nil, 403},
		{"GET", "/config/log_level", "app", nil, 200},
		{"POST", "/pub?topic=t", "app", "m", 200},
		{"GET", "/debug/pprof/", "ops", nil, 200},
	}
	for _, tt := range tests {
		if r := httpRequest(t, tt.method, base+tt.path, tt.body, bearer(tt.secret)...); r.status != tt.status {
			t.Errorf("%s %s as %s = %d %q, want %d", tt.method, tt.path, tt.secret, r.status, r.body, tt.status)
		}
	}
	if got := logLevel(); got != before {
		t.Fatalf("log_level changed to %s by a refused request (was %s)", got, before)
	}
	if r := httpRequest(t, "PUT", base+"/config/log_level", "debug", bearer("ops")...); r.status != 200 {
		t.Fatalf("PUT /config/log_level as the admin = %d %q, want 200", r.status, r.body)
	}
	if got := logLevel(); got != "1" { // NSQ's number for debug
		t.Errorf("log_level = %s after the admin set debug, want 1 (was %s)", got, before)
	}
}
