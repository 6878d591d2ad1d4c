package compat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/nsqlookupd"
)

// need skips (or, under CI=true, fails) when a prerequisite is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI installs it in .ci/run)", what)
	}
	t.Skipf("%s is missing; run: (cd internal/compat/nsqjs && npm ci)", what)
}

// needNSQJS returns the path of node, skipping the test (see need) when
// node or the nsqjs package is missing.
func needNSQJS(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	need(t, err == nil, "node")
	_, err = os.Stat(filepath.Join("nsqjs", "node_modules", "nsqjs"))
	need(t, err == nil, "the nsqjs package")
	return node
}

// runNode runs a script of the nsqjs directory and fails the test if it
// exits non-zero. The scripts stop themselves well within the minute the
// context gives them; the context is the backstop.
func runNode(t *testing.T, node, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = "nsqjs"
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node %s:\n%s", script, out)
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
}

// TestNSQJS: nsqjs's Writer publishes (PUB, MPUB, DPUB) and its Reader
// consumes every message, over a plain connection, snappy and deflate; and,
// against an nsqd that requires TLS, over TLS (with and without verifying
// the test's CA), TLS + snappy and TLS + deflate.
func TestNSQJS(t *testing.T) {
	node := needNSQJS(t)
	t.Run("plain", func(t *testing.T) {
		n := nsqtest.StartNSQD(t, nil)
		runNode(t, node, "check.js", n.TCPAddr)
	})
	t.Run("tls", func(t *testing.T) {
		p := newPKI(t)
		n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
			c.TLSCert, c.TLSKey, c.TLSRequired = p.cert, p.key, nsqd.TLSRequired
		})
		runNode(t, node, "check.js", n.TCPAddr, p.ca)
	})
}

// TestNSQJSLookupd: an nsqjs Reader finds the producer of a topic through
// our nsqlookupd (lookupdHTTPAddresses) and receives its messages.
func TestNSQJSLookupd(t *testing.T) {
	node := needNSQJS(t)
	lcfg := nsqlookupd.DefaultConfig()
	lcfg.TCPAddress, lcfg.HTTPAddress, lcfg.BroadcastAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	lookupd, err := nsqlookupd.New(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lookupd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.LookupdTCPAddrs = []string{lookupd.TCPAddr().String()} })
	runNode(t, node, "lookup.js", n.TCPAddr, lookupd.HTTPAddr().String())
}

// TestNSQJSAuth: nsqjs's authSecret against an nsqd asking a test auth
// server. The good secret publishes and consumes over plain and over TLS
// with a client certificate (the auth server sees tls and the certificate's
// common name); a wrong secret fails the Writer and the Reader; a topic the
// secret may not publish to fails the publish. Nothing refused is stored.
func TestNSQJSAuth(t *testing.T) {
	node := needNSQJS(t)
	p := newPKI(t)
	const good, bad, identity = "good-secret", "wrong-secret", "nsqjs-user"
	as := startAuthServer(t, good, identity, "^auth_(ok|tls)$")
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.AuthHTTPAddresses = []string{strings.TrimPrefix(as.URL, "http://")}
		c.TLSCert, c.TLSKey = p.cert, p.key
		c.TLSClientAuthPolicy, c.TLSRootCAFile = "require-verify", p.ca
	})
	runNode(t, node, "auth.js", n.TCPAddr, p.ca, p.clientCert, p.clientKey, good, bad, identity)

	want := []string{
		"remote_ip=127.0.0.1 secret=" + good + " tls=false common_name=",
		"remote_ip=127.0.0.1 secret=" + good + " tls=true common_name=" + clientName,
		"remote_ip=127.0.0.1 secret=" + bad + " tls=false common_name=",
	}
	got := as.seen()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("auth server queries %q lack %q", got, w)
		}
	}

	counts := map[string]uint64{}
	for _, ts := range n.Stats(nsqd.StatsFilter{}).Topics {
		counts[ts.TopicName] = ts.MessageCount
	}
	if wantCounts := map[string]uint64{"auth_ok": 3, "auth_tls": 1}; !maps.Equal(counts, wantCounts) {
		t.Errorf("topics and message counts %v, want %v", counts, wantCounts)
	}
}

// TestNSQJSRequeueTouch: an nsqjs Reader touches a message past its
// message timeout, requeues it with requeue(0), gets it again with
// attempts 2 and finishes it (requeue.js). nsqd must have counted one
// requeue and no timeout, and hold nothing.
func TestNSQJSRequeueTouch(t *testing.T) {
	node := needNSQJS(t)
	n := nsqtest.StartNSQD(t, nil)
	runNode(t, node, "requeue.js", n.TCPAddr, n.HTTPAddr)

	st := n.Stats(nsqd.StatsFilter{Topic: "requeue", Channel: "c"})
	if len(st.Topics) != 1 || len(st.Topics[0].Channels) != 1 {
		t.Fatalf("stats %+v, want topic requeue with channel c", st.Topics)
	}
	c := st.Topics[0].Channels[0]
	if c.RequeueCount != 1 || c.TimeoutCount != 0 || c.Depth != 0 || c.InFlightCount != 0 || c.DeferredCount != 0 {
		t.Errorf("channel requeued %d timed out %d depth %d in flight %d deferred %d, want 1 0 0 0 0",
			c.RequeueCount, c.TimeoutCount, c.Depth, c.InFlightCount, c.DeferredCount)
	}
}

// clientName is the common name of the client certificate newPKI makes.
const clientName = "nsqjs-client"

// pki is the PEM files of a CA made for one test, a server certificate it
// signed for 127.0.0.1 and localhost, and a client certificate it signed
// for clientName.
type pki struct {
	ca, cert, key, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	p := pki{
		ca:         filepath.Join(dir, "ca.pem"),
		cert:       filepath.Join(dir, "cert.pem"),
		key:        filepath.Join(dir, "key.pem"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client-key.pem"),
	}
	serial := int64(0)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
	}
	// issue signs tmpl with the parent's key (itself when parent is nil),
	// writes the certificate to certFile (and its key to keyFile unless
	// empty) and returns both for signing others.
	issue := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		if keyFile != "" {
			kder, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			writePEM(t, keyFile, "PRIVATE KEY", kder)
		}
		return cert, key
	}

	caTmpl := template("nsqx compat test CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid = true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	ca, caKey := issue(caTmpl, nil, nil, p.ca, "")

	srvTmpl := template("127.0.0.1")
	srvTmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srvTmpl.DNSNames = []string{"localhost"}
	srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	issue(srvTmpl, ca, caKey, p.cert, p.key)

	cliTmpl := template(clientName)
	cliTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	issue(cliTmpl, ca, caKey, p.clientCert, p.clientKey)
	return p
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// authServer answers NSQ's auth queries (GET /auth): the one good secret
// may publish and subscribe on the topics matching a pattern, any other
// secret is refused with 403. It records every query.
type authServer struct {
	*httptest.Server
	good, identity, topics string

	mu      sync.Mutex
	queries []string // "remote_ip=… secret=… tls=… common_name=…"
}

func startAuthServer(t *testing.T, good, identity, topics string) *authServer {
	a := &authServer{good: good, identity: identity, topics: topics}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth", a.auth)
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

func (a *authServer) auth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	a.queries = append(a.queries, queryLine(q))
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if q.Get("secret") != a.good {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"NOT_AUTHORIZED"}`)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"ttl":          3600,
		"identity":     a.identity,
		"identity_url": "https://example.com/" + a.identity,
		"authorizations": []map[string]any{{
			"topic":       a.topics,
			"channels":    []string{".*"},
			"permissions": []string{"subscribe", "publish"},
		}},
	})
}

func queryLine(q url.Values) string {
	return "remote_ip=" + q.Get("remote_ip") + " secret=" + q.Get("secret") + " tls=" + q.Get("tls") + " common_name=" + q.Get("common_name")
}

// seen returns the queries so far.
func (a *authServer) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.queries)
}
