package nsqd_test

// TLS and compression: go-nsq over every transport it offers, the raw
// upgrade sequence byte by byte, and every refusal. Certificates are made
// here, per test.

import (
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// testPKI is a CA, a server certificate it signed for 127.0.0.1, a client
// certificate it signed and a stranger's certificate no CA vouches for.
type testPKI struct {
	caFile     string
	caPool     *x509.CertPool
	certFile   string
	keyFile    string
	client     tls.Certificate
	stranger   tls.Certificate
	clientName string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
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
	caKey := newKey()
	caTmpl := template("nsqx test CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid = true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (tls.Certificate, []byte, []byte) {
		key := newKey()
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return cert, certPEM, keyPEM
	}
	srvTmpl := template("127.0.0.1")
	srvTmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srvTmpl.DNSNames = []string{"localhost"}
	srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	_, srvCert, srvKey := issue(srvTmpl, ca, caKey)
	p := &testPKI{
		caFile:     filepath.Join(dir, "ca.pem"),
		certFile:   filepath.Join(dir, "cert.pem"),
		keyFile:    filepath.Join(dir, "key.pem"),
		caPool:     x509.NewCertPool(),
		clientName: "nsqx-test-client",
	}
	p.caPool.AddCert(ca)
	cliTmpl := template(p.clientName)
	cliTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.client, _, _ = issue(cliTmpl, ca, caKey)
	strangerTmpl := template("stranger")
	strangerTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.stranger, _, _ = issue(strangerTmpl, strangerTmpl, newKey()) // signed by a key nobody trusts
	for file, data := range map[string][]byte{
		p.caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.certFile: srvCert,
		p.keyFile:  srvKey,
	} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// server configures nsqd with the certificate.
func (p *testPKI) server(cfg *nsqd.Config) {
	cfg.TLSCert, cfg.TLSKey = p.certFile, p.keyFile
}

// startTLSNSQD starts an nsqd with pki's server certificate and key, then
// changed by server unless it is nil.
func startTLSNSQD(t *testing.T, pki *testPKI, server func(*nsqd.Config, *testPKI)) *nsqtest.NSQD {
	t.Helper()
	return nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		pki.server(c)
		if server != nil {
			server(c, pki)
		}
	})
}

// clientTLS trusts the CA; certs are the client's certificates.
func (p *testPKI) clientTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: p.caPool, ServerName: "127.0.0.1", Certificates: certs}
}

func newProducerConfig(t *testing.T, addr string, cfg *nsq.Config) *nsq.Producer {
	t.Helper()
	p, err := nsq.NewProducer(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	t.Cleanup(p.Stop)
	return p
}

// transportCase is one way go-nsq can talk to nsqd.
type transportCase struct {
	name    string
	server  func(*nsqd.Config, *testPKI)
	client  func(*nsq.Config, *testPKI)
	tls     bool
	snappy  bool
	deflate bool
}

func withTLS(c *nsq.Config, p *testPKI) { c.TlsV1, c.TlsConfig = true, p.clientTLS() }

// transportCases is every combination go-nsq offers: TLS (without and with
// a client certificate, under both policies), snappy, deflate, and each
// compression over TLS.
var transportCases = []transportCase{
	{name: "plain"},
	{name: "tls", client: withTLS, tls: true},
	{name: "tls client cert require", tls: true,
		server: func(c *nsqd.Config, p *testPKI) { c.TLSClientAuthPolicy = "require" },
		client: func(c *nsq.Config, p *testPKI) { c.TlsV1, c.TlsConfig = true, p.clientTLS(p.stranger) }},
	{name: "tls client cert require-verify", tls: true,
		server: func(c *nsqd.Config, p *testPKI) {
			c.TLSClientAuthPolicy, c.TLSRootCAFile, c.TLSRequired = "require-verify", p.caFile, nsqd.TLSRequired
		},
		client: func(c *nsq.Config, p *testPKI) { c.TlsV1, c.TlsConfig = true, p.clientTLS(p.client) }},
	{name: "tls required", tls: true,
		server: func(c *nsqd.Config, p *testPKI) { c.TLSRequired = nsqd.TLSRequired },
		client: withTLS},
	{name: "tls 1.0", tls: true,
		server: func(c *nsqd.Config, p *testPKI) { c.TLSMinVersion = tls.VersionTLS10 },
		client: func(c *nsq.Config, p *testPKI) {
			withTLS(c, p)
			c.TlsConfig.MinVersion, c.TlsConfig.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		}},
	{name: "snappy", snappy: true, client: func(c *nsq.Config, p *testPKI) { c.Snappy = true }},
	{name: "deflate", deflate: true, client: func(c *nsq.Config, p *testPKI) { c.Deflate = true }},
	{name: "deflate level 1", deflate: true, client: func(c *nsq.Config, p *testPKI) { c.Deflate, c.DeflateLevel = true, 1 }},
	{name: "deflate level 9", deflate: true,
		server: func(c *nsqd.Config, p *testPKI) { c.MaxDeflateLevel = 9 },
		client: func(c *nsq.Config, p *testPKI) { c.Deflate, c.DeflateLevel = true, 9 }},
	{name: "tls snappy", tls: true, snappy: true, client: func(c *nsq.Config, p *testPKI) { withTLS(c, p); c.Snappy = true }},
	{name: "tls deflate", tls: true, deflate: true, client: func(c *nsq.Config, p *testPKI) { withTLS(c, p); c.Deflate = true }},
	{name: "tls client cert snappy", tls: true, snappy: true,
		server: func(c *nsqd.Config, p *testPKI) { c.TLSClientAuthPolicy, c.TLSRootCAFile = "require-verify", p.caFile },
		client: func(c *nsq.Config, p *testPKI) { c.TlsV1, c.TlsConfig, c.Snappy = true, p.clientTLS(p.client), true }},
	{name: "snappy switched off", client: func(c *nsq.Config, p *testPKI) { c.Snappy = true },
		server: func(c *nsqd.Config, p *testPKI) { c.SnappyEnabled = false }},
	{name: "deflate switched off", client: func(c *nsq.Config, p *testPKI) { c.Deflate = true },
		server: func(c *nsqd.Config, p *testPKI) { c.DeflateEnabled = false }},
}

// TestGoNSQTransports publishes (PUB, MPUB, DPUB; small bodies and bodies
// larger than a snappy block and the output buffer) and consumes over
// every transport, and checks that /stats reports it.
func TestGoNSQTransports(t *testing.T) {
	t.Parallel()
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pki := newTestPKI(t)
			n := startTLSNSQD(t, pki, tc.server)
			cfg := func() *nsq.Config {
				c := nsq.NewConfig()
				if tc.client != nil {
					tc.client(c, pki)
				}
				return c
			}
			p := newProducerConfig(t, n.TCPAddr, cfg())
			big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB, compressible
			var random [100 << 10]byte
			rand.Read(random[:])
			want := numbered("m", 50)
			want = append(want, append([]byte("big"), big...), append([]byte("random"), random[:]...))
			for _, m := range want[:10] {
				if err := p.Publish("t", m); err != nil {
					t.Fatalf("Publish: %v", err)
				}
			}
			if err := p.MultiPublish("t", want[10:]); err != nil {
				t.Fatalf("MultiPublish: %v", err)
			}
			if err := p.DeferredPublish("t", 0, []byte("deferred")); err != nil {
				t.Fatalf("DeferredPublish: %v", err)
			}
			want = append(want, []byte("deferred"))

			in := newInbox()
			ccfg := cfg()
			ccfg.MaxInFlight = 100
			startConsumer(t, n.TCPAddr, "t", "c", ccfg, 1, in.handler(false))
			checkSet(t, in.bodies(t, len(want), 10*time.Second), want)
			waitSettled(t, n, "t", "c", uint64(len(want)))

			cs := mustChannelStats(t, n, "t", "c")
			st := n.Stats(nsqd.StatsFilter{IncludeClients: true})
			if len(cs.Clients) != 1 || len(st.Producers) != 1 {
				t.Fatalf("%d consumers, %d producers, want 1 and 1", len(cs.Clients), len(st.Producers))
			}
			for _, c := range []nsqd.ClientStats{cs.Clients[0], st.Producers[0]} {
				if c.TLS != tc.tls || c.Snappy != tc.snappy || c.Deflate != tc.deflate {
					t.Errorf("stats tls/snappy/deflate = %v/%v/%v, want %v/%v/%v", c.TLS, c.Snappy, c.Deflate, tc.tls, tc.snappy, tc.deflate)
				}
				if tc.tls && (c.TLSVersion == "" || c.CipherSuite == "") || !tc.tls && (c.TLSVersion != "" || c.CipherSuite != "") {
					t.Errorf("stats tls_version %q, tls_cipher_suite %q with tls=%v", c.TLSVersion, c.CipherSuite, tc.tls)
				}
			}
			if tc.name == "tls 1.0" && cs.Clients[0].TLSVersion != "TLS1.0" {
				t.Errorf("tls_version = %q, want TLS1.0", cs.Clients[0].TLSVersion)
			}
		})
	}
}

// TestGoNSQTLSRefused checks the connections nsqd must refuse: no client
// certificate, or one its CA did not sign, or a TLS version below the
// minimum (TLS 1.2 by default), or no TLS when it is required.
func TestGoNSQTLSRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		server  func(*nsqd.Config, *testPKI)
		client  func(*nsq.Config, *testPKI)
		wantErr string
	}{
		{"require without a certificate",
			func(c *nsqd.Config, p *testPKI) { c.TLSClientAuthPolicy = "require" },
			withTLS, ""},
		{"require-verify without a certificate",
			func(c *nsqd.Config, p *testPKI) { c.TLSClientAuthPolicy, c.TLSRootCAFile = "require-verify", p.caFile },
			withTLS, ""},
		{"require-verify with a stranger's certificate",
			func(c *nsqd.Config, p *testPKI) { c.TLSClientAuthPolicy, c.TLSRootCAFile = "require-verify", p.caFile },
			func(c *nsq.Config, p *testPKI) { c.TlsV1, c.TlsConfig = true, p.clientTLS(p.stranger) }, ""},
		{"client certificate policy without TLS",
			func(c *nsqd.Config, p *testPKI) {
				c.TLSClientAuthPolicy, c.TLSRootCAFile, c.TLSRequired = "require-verify", p.caFile, nsqd.TLSRequired
			},
			nil, "TLS required"},
		{"TLS 1.1 below the default minimum", nil,
			func(c *nsq.Config, p *testPKI) {
				withTLS(c, p)
				c.TlsConfig.MinVersion, c.TlsConfig.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			}, ""},
		{"TLS 1.2 below a minimum of 1.3",
			func(c *nsqd.Config, p *testPKI) { c.TLSMinVersion = tls.VersionTLS13 },
			func(c *nsq.Config, p *testPKI) { withTLS(c, p); c.TlsConfig.MaxVersion = tls.VersionTLS12 }, ""},
		{"TLS required, client without TLS",
			func(c *nsqd.Config, p *testPKI) { c.TLSRequired = nsqd.TLSRequired }, nil, "TLS required"},
		{"TLS required except HTTP, client without TLS",
			func(c *nsqd.Config, p *testPKI) { c.TLSRequired = nsqd.TLSRequiredExceptHTTP }, nil, "TLS required"},
		{"client wants TLS, server has none",
			func(c *nsqd.Config, p *testPKI) { c.TLSCert, c.TLSKey = "", "" }, withTLS, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pki := newTestPKI(t)
			n := startTLSNSQD(t, pki, tt.server)
			cfg := nsq.NewConfig()
			if tt.client != nil {
				tt.client(cfg, pki)
			}
			p := newProducerConfig(t, n.TCPAddr, cfg)
			err := p.Publish("t", []byte("x"))
			if tt.name == "client wants TLS, server has none" {
				// NSQ's answer: tls_v1 false, and the client carries on
				// in the clear.
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Publish succeeded, want it refused")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Publish: %v, want an error containing %q", err, tt.wantErr)
			}
			if ts, ok := topicStats(n, "t"); ok && ts.MessageCount != 0 {
				t.Errorf("topic t has %d messages, want none", ts.MessageCount)
			}
		})
	}
}

// rawConn speaks the protocol by hand through whatever layers are on.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  io.Reader
	w  io.Writer
	fw *flate.Writer
}

func dialRawConn(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc := nsqtest.Dial(t, addr)
	c := &rawConn{t: t, nc: nc, r: nc, w: nc}
	c.write(wire.MagicV2)
	return c
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.w.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	if c.fw != nil {
		if err := c.fw.Flush(); err != nil {
			c.t.Fatalf("flush: %v", err)
		}
	}
}

func (c *rawConn) send(name string, body []byte, params ...string) {
	c.t.Helper()
	c.write(wire.AppendCommand(nil, name, body, params...))
}

// frame reads one frame, skipping heartbeats. The reader is not buffered
// before the upgrades, so nothing is read past a frame.
func (c *rawConn) frame() (int32, []byte) {
	c.t.Helper()
	for {
		typ, data, err := wire.ReadFrame(c.r, 16<<20)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		if typ != wire.FrameResponse || !bytes.Equal(data, wire.Heartbeat) {
			return typ, data
		}
	}
}

func (c *rawConn) expect(want string) {
	c.t.Helper()
	wantType := wire.FrameResponse
	if strings.HasPrefix(want, "E_") {
		wantType = wire.FrameError
	}
	typ, data := c.frame()
	if typ != wantType || string(data) != want {
		c.t.Fatalf("got frame type %d %q, want type %d %q", typ, data, wantType, want)
	}
}

func (c *rawConn) expectClosed() {
	c.t.Helper()
	if !nsqtest.IsClosed(c.nc, 10*time.Second) {
		c.t.Fatalf("connection still open, want it closed")
	}
}

// identify sends IDENTIFY with feature negotiation and returns the reply.
func (c *rawConn) identify(fields map[string]any) map[string]any {
	c.t.Helper()
	fields["feature_negotiation"] = true
	js, _ := json.Marshal(fields)
	c.send("IDENTIFY", js)
	typ, data := c.frame()
	if typ != wire.FrameResponse {
		c.t.Fatalf("IDENTIFY: frame type %d %q", typ, data)
	}
	var reply map[string]any
	if err := json.Unmarshal(data, &reply); err != nil {
		c.t.Fatalf("IDENTIFY reply %q: %v", data, err)
	}
	return reply
}

// startTLS runs the client handshake and reads the OK sent over TLS.
func (c *rawConn) startTLS(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.r, c.w = tc, tc
	c.expect("OK")
}

// startSnappy and startDeflate switch to the codecs go-nsq uses
// (github.com/golang/snappy, compress/flate) and read the compressed OK.
func (c *rawConn) startSnappy() {
	c.t.Helper()
	base := c.w
	//lint:ignore SA1019 the unbuffered writer is what go-nsq uses
	c.r, c.w = snappy.NewReader(c.r), snappy.NewWriter(base)
	c.expect("OK")
}

func (c *rawConn) startDeflate(level int) {
	c.t.Helper()
	fw, err := flate.NewWriter(c.w, level)
	if err != nil {
		c.t.Fatal(err)
	}
	c.r, c.w, c.fw = flate.NewReader(c.r), fw, fw
	c.expect("OK")
}

// roundTrip publishes and consumes one message over the connection.
func (c *rawConn) roundTrip(body string) {
	c.t.Helper()
	c.send("PUB", []byte(body), "rt")
	c.expect("OK")
	c.send("SUB", nil, "rt", "c")
	c.expect("OK")
	c.send("RDY", nil, "1")
	typ, data := c.frame()
	if typ != wire.FrameMessage {
		c.t.Fatalf("got frame type %d %q, want a message", typ, data)
	}
	m, err := wire.DecodeMessage(data)
	if err != nil || string(m.Body) != body {
		c.t.Fatalf("message %q, %v; want body %q", m.Body, err, body)
	}
	c.send("FIN", nil, string(m.ID[:]))
	c.send("NOP", nil)
	c.send("CLS", nil)
	c.expect("CLOSE_WAIT")
}

// TestProtocolUpgrade follows the upgrade byte by byte: the JSON reply in
// the clear, then the TLS handshake and OK over TLS, then OK inside the
// compressed stream, then the session in the new layers.
func TestProtocolUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ask        map[string]any
		server     func(*nsqd.Config)
		tls        bool
		snappy     bool
		deflate    int // level expected, 0: no deflate
		wantLevel  float64
		noTLSCerts bool
	}{
		{name: "tls", ask: map[string]any{"tls_v1": true}, tls: true, wantLevel: 6},
		{name: "snappy", ask: map[string]any{"snappy": true}, snappy: true, wantLevel: 6},
		{name: "deflate", ask: map[string]any{"deflate": true}, deflate: 6, wantLevel: 6},
		{name: "deflate level 2", ask: map[string]any{"deflate": true, "deflate_level": 2}, deflate: 2, wantLevel: 2},
		{name: "deflate level capped", ask: map[string]any{"deflate": true, "deflate_level": 9}, deflate: 6, wantLevel: 6},
		{name: "tls snappy", ask: map[string]any{"tls_v1": true, "snappy": true}, tls: true, snappy: true, wantLevel: 6},
		{name: "tls deflate", ask: map[string]any{"tls_v1": true, "deflate": true, "deflate_level": 1}, tls: true, deflate: 1, wantLevel: 1},
		{name: "snappy off, both asked: deflate", ask: map[string]any{"snappy": true, "deflate": true},
			server: func(c *nsqd.Config) { c.SnappyEnabled = false }, deflate: 6, wantLevel: 6},
		{name: "deflate off, both asked: snappy", ask: map[string]any{"snappy": true, "deflate": true},
			server: func(c *nsqd.Config) { c.DeflateEnabled = false }, snappy: true, wantLevel: 6},
		{name: "tls asked, none configured", ask: map[string]any{"tls_v1": true}, noTLSCerts: true, wantLevel: 6},
		{name: "tls required", ask: map[string]any{"tls_v1": true},
			server: func(c *nsqd.Config) { c.TLSRequired = nsqd.TLSRequired }, tls: true, wantLevel: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pki := newTestPKI(t)
			n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
				if !tt.noTLSCerts {
					pki.server(c)
				}
				if tt.server != nil {
					tt.server(c)
				}
			})
			c := dialRawConn(t, n.TCPAddr)
			reply := c.identify(tt.ask)
			for key, want := range map[string]any{
				"tls_v1": tt.tls, "snappy": tt.snappy, "deflate": tt.deflate > 0, "deflate_level": tt.wantLevel,
			} {
				if reply[key] != want {
					t.Errorf("IDENTIFY reply %s = %v, want %v", key, reply[key], want)
				}
			}
			if tt.tls {
				c.startTLS(pki.clientTLS())
			}
			if tt.snappy {
				c.startSnappy()
			}
			if tt.deflate > 0 {
				c.startDeflate(tt.deflate)
			}
			c.roundTrip("over " + tt.name)
			cs := n.Stats(nsqd.StatsFilter{Topic: "rt", Channel: "c", IncludeClients: true}).Topics[0].Channels[0].Clients[0]
			if cs.TLS != tt.tls || cs.Snappy != tt.snappy || cs.Deflate != (tt.deflate > 0) {
				t.Errorf("stats tls/snappy/deflate = %v/%v/%v, want %v/%v/%v", cs.TLS, cs.Snappy, cs.Deflate, tt.tls, tt.snappy, tt.deflate > 0)
			}
		})
	}
}

// TestProtocolTLSRequired checks every command before TLS is refused, as
// NSQ refuses it, fatally; IDENTIFY alone is let through.
func TestProtocolTLSRequired(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, mode := range []int{nsqd.TLSRequired, nsqd.TLSRequiredExceptHTTP} {
		n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
			pki.server(c)
			c.TLSRequired = mode
		})
		for _, cmd := range [][]byte{
			line("NOP"), line("PUB t"), line("MPUB t"), line("DPUB t 0"), line("SUB t c"), line("RDY 1"),
			line("FIN " + id0), line("REQ " + id0 + " 0"), line("TOUCH " + id0), line("CLS"), line("AUTH"), line("FOO"),
		} {
			name := strings.Fields(string(cmd))[0]
			t.Run(fmt.Sprintf("%d %s", mode, name), func(t *testing.T) {
				for _, identified := range []bool{false, true} {
					c := dialRawConn(t, n.TCPAddr)
					if identified {
						// Negotiating without TLS does not help.
						reply := c.identify(map[string]any{"snappy": false})
						if reply["tls_v1"] != false {
							t.Fatalf("tls_v1 = %v without asking", reply["tls_v1"])
						}
					}
					c.write(cmd)
					c.expect("E_INVALID cannot " + name + " in current state (TLS required)")
					c.expectClosed()
				}
			})
		}
		t.Run(fmt.Sprintf("%d plain IDENTIFY", mode), func(t *testing.T) {
			c := dialRawConn(t, n.TCPAddr)
			c.send("IDENTIFY", []byte(`{"client_id":"x"}`))
			c.expect("OK")
			c.send("PUB", []byte("x"), "t")
			c.expect("E_INVALID cannot PUB in current state (TLS required)")
		})
		t.Run(fmt.Sprintf("%d after TLS", mode), func(t *testing.T) {
			c := dialRawConn(t, n.TCPAddr)
			c.identify(map[string]any{"tls_v1": true})
			c.startTLS(pki.clientTLS())
			c.roundTrip("fine")
		})
	}
}

// TestProtocolUpgradeRefused covers the ways an upgrade fails.
func TestProtocolUpgradeRefused(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	n := nsqtest.StartNSQD(t, pki.server)

	t.Run("snappy and deflate", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		c.send("IDENTIFY", []byte(`{"feature_negotiation":true,"snappy":true,"deflate":true}`))
		c.expect("E_IDENTIFY_FAILED cannot enable both deflate and snappy compression")
		c.expectClosed()
	})
	t.Run("data before the upgrade", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		c.write(cat(identifyCmd(`{"feature_negotiation":true,"snappy":true}`), line("NOP")))
		typ, data := c.frame()
		if typ != wire.FrameError || !strings.HasPrefix(string(data), "E_IDENTIFY_FAILED IDENTIFY failed") {
			t.Fatalf("got frame type %d %q, want E_IDENTIFY_FAILED", typ, data)
		}
		c.expectClosed()
	})
	t.Run("garbage instead of a TLS handshake", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		c.identify(map[string]any{"tls_v1": true})
		c.write([]byte("this is not a ClientHello\n"))
		c.expectClosed()
	})
	t.Run("untrusted server certificate", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		c.identify(map[string]any{"tls_v1": true})
		tc := tls.Client(c.nc, &tls.Config{ServerName: "127.0.0.1"}) // system roots only
		if err := tc.Handshake(); err == nil {
			t.Fatalf("handshake succeeded with an unknown CA")
		}
		c.expectClosed()
	})
	t.Run("no handshake within the deadline", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		c.identify(map[string]any{"tls_v1": true})
		start := time.Now()
		c.expectClosed()
		if d := time.Since(start); d < 4*time.Second {
			t.Errorf("closed after %v, want the 5 s handshake deadline", d)
		}
	})
	for _, second := range []string{`{"feature_negotiation":true,"tls_v1":true}`, `{"feature_negotiation":true,"snappy":true}`} {
		t.Run("second upgrade "+second, func(t *testing.T) {
			c := dialRawConn(t, n.TCPAddr)
			c.identify(map[string]any{"tls_v1": true, "snappy": true})
			c.startTLS(pki.clientTLS())
			c.startSnappy()
			c.send("IDENTIFY", []byte(second))
			typ, _ := c.frame() // the JSON reply is not sent: refused first
			if typ != wire.FrameError {
				t.Fatalf("second IDENTIFY: frame type %d, want an error", typ)
			}
		})
	}
	t.Run("second IDENTIFY without upgrades", func(t *testing.T) {
		c := dialRawConn(t, n.TCPAddr)
		c.identify(map[string]any{"tls_v1": true, "deflate": true})
		c.startTLS(pki.clientTLS())
		c.startDeflate(6)
		reply := c.identify(map[string]any{"client_id": "again"})
		if reply["tls_v1"] != false || reply["deflate"] != false {
			t.Errorf("second IDENTIFY reply %v", reply)
		}
		c.roundTrip("still deflated")
	})
}

// TestHTTPS serves the API over --https-address, with the same certificate
// and client policy, and points plain HTTP clients to it under
// --tls-required.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tests := []struct {
		name      string
		server    func(*nsqd.Config)
		certs     []tls.Certificate
		httpsOK   bool
		plainCode int
	}{
		{"tls", nil, nil, true, 200},
		{"tls required", func(c *nsqd.Config) { c.TLSRequired = nsqd.TLSRequired }, nil, true, 403},
		{"tls required except http", func(c *nsqd.Config) { c.TLSRequired = nsqd.TLSRequiredExceptHTTP }, nil, true, 200},
		{"client cert", func(c *nsqd.Config) {
			c.TLSClientAuthPolicy, c.TLSRootCAFile, c.TLSRequired = "require-verify", pki.caFile, nsqd.TLSRequired
		}, []tls.Certificate{pki.client}, true, 403},
		{"client cert missing", func(c *nsqd.Config) { c.TLSClientAuthPolicy = "require" }, nil, false, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
				pki.server(c)
				if tt.server != nil {
					tt.server(c)
				}
			})
			addr := n.HTTPSAddr()
			if addr == nil {
				t.Fatal("no HTTPS listener")
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.clientTLS(tt.certs...)}, Timeout: 10 * time.Second}
			t.Cleanup(client.CloseIdleConnections)
			resp, err := client.Post("https://"+addr.String()+"/topic/create?topic=secure", "", nil)
			if !tt.httpsOK {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("HTTPS without a client certificate: %d, want the handshake refused", resp.StatusCode)
				}
				if _, ok := topicStats(n, "secure"); ok {
					t.Errorf("topic created without a client certificate")
				}
				return
			}
			if err != nil {
				t.Fatalf("HTTPS: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("HTTPS /topic/create: %d", resp.StatusCode)
			}
			if _, ok := topicStats(n, "secure"); !ok {
				t.Errorf("topic not created over HTTPS")
			}
			presp, err := http.Get("http://" + n.HTTPAddr + "/ping")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(presp.Body)
			presp.Body.Close()
			if presp.StatusCode != tt.plainCode {
				t.Errorf("plain /ping: %d %s, want %d", presp.StatusCode, body, tt.plainCode)
			}
			if tt.plainCode == 403 {
				want := fmt.Sprintf(`{"message": "TLS_REQUIRED", "https_port": %d}`, addr.(*net.TCPAddr).Port)
				if string(body) != want {
					t.Errorf("plain /ping body %s, want %s", body, want)
				}
			}
		})
	}
}

// TestTLSConfigErrors checks that New refuses unusable TLS files.
func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not pem"), 0o600)
	tests := []struct {
		name   string
		mutate func(*nsqd.Config)
	}{
		{"missing cert", func(c *nsqd.Config) { c.TLSCert, c.TLSKey = "/nonexistent/cert.pem", pki.keyFile }},
		{"key mismatch", func(c *nsqd.Config) { c.TLSCert, c.TLSKey = pki.caFile, pki.keyFile }},
		{"bad CA file", func(c *nsqd.Config) { pki.server(c); c.TLSRootCAFile = garbage }},
		{"missing CA file", func(c *nsqd.Config) { pki.server(c); c.TLSRootCAFile = "/nonexistent/ca.pem" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := nsqtest.DefaultConfig(t)
			tt.mutate(cfg)
			if s, err := nsqd.New(cfg); err == nil {
				t.Errorf("New succeeded, want an error")
				_ = s
			}
		})
	}
}

// upgradeTransport negotiates transport ("tls", "snappy" or "deflate";
// anything else leaves nc as it is) on a connection that has sent the
// magic, and returns the connection to speak through. It runs the
// upgrade as go-nsq does, with go-nsq's codecs.
func upgradeTransport(t testing.TB, nc net.Conn, transport string, pki *testPKI) net.Conn {
	t.Helper()
	var ask string
	switch transport {
	case "tls":
		ask = `{"feature_negotiation":true,"tls_v1":true}`
	case "snappy":
		ask = `{"feature_negotiation":true,"snappy":true}`
	case "deflate":
		ask = `{"feature_negotiation":true,"deflate":true}`
	default:
		return nc
	}
	c := &rawConn{t: t, nc: nc, r: nc, w: nc}
	c.send("IDENTIFY", []byte(ask))
	if typ, data := c.frame(); typ != wire.FrameResponse || !bytes.Contains(data, []byte(`"`+transport+`":true`)) && transport != "tls" {
		t.Fatalf("IDENTIFY for %s: frame type %d %q", transport, typ, data)
	}
	switch transport {
	case "tls":
		c.startTLS(pki.clientTLS())
		return c.r.(*tls.Conn)
	case "snappy":
		c.startSnappy()
	case "deflate":
		c.startDeflate(6)
	}
	return newLayeredConn(nc, c.r, c.w, c.fw)
}

// layeredConn is a connection seen through compression. A decompressor
// keeps the first error it sees, so a read deadline must never reach it:
// a goroutine reads it without one (until the connection closes) and Read
// applies the deadline to what it has decompressed.
type layeredConn struct {
	net.Conn
	w  io.Writer
	fw *flate.Writer

	mu       sync.Mutex
	buf      []byte
	err      error
	deadline time.Time
	more     chan struct{}
}

func newLayeredConn(nc net.Conn, r io.Reader, w io.Writer, fw *flate.Writer) *layeredConn {
	nc.SetReadDeadline(time.Time{})
	c := &layeredConn{Conn: nc, w: w, fw: fw, more: make(chan struct{}, 1)}
	go c.fill(r)
	return c
}

func (c *layeredConn) fill(r io.Reader) {
	b := make([]byte, 32<<10)
	for {
		n, err := r.Read(b)
		c.mu.Lock()
		c.buf = append(c.buf, b[:n]...)
		if err != nil {
			c.err = err
		}
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (c *layeredConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		if len(c.buf) > 0 {
			n := copy(b, c.buf)
			c.buf = c.buf[n:]
			c.mu.Unlock()
			return n, nil
		}
		err, deadline := c.err, c.deadline
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		var expired <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timer := time.NewTimer(d)
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case <-c.more:
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (c *layeredConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *layeredConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *layeredConn) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if err == nil && c.fw != nil {
		err = c.fw.Flush()
	}
	return n, err
}

func (c *layeredConn) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

// BenchmarkTransport moves messages through nsqd over each transport: one
// producer sends MPUBs of 100 messages of 256 bytes, one consumer receives
// and FINs them. Allocations count client and server together.
func BenchmarkTransport(b *testing.B) {
	for _, transport := range []string{"tcp", "tls", "snappy", "deflate"} {
		b.Run(transport, func(b *testing.B) {
			s := startServer(b, transport, nil)
			msgs := make([][]byte, 100)
			for i := range msgs {
				msgs[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 256)
			}
			mpub := wire.AppendCommand(nil, "MPUB", wire.AppendMPUBBody(nil, msgs), "bench")
			p, c := s.dial(b), s.dial(b)
			c.sub("bench", "c")
			c.send("RDY", nil, "100") // credit runs out with each batch: flushed at once
			fins := make([]byte, 0, len(msgs)*(len("FIN \n")+wire.IDLength))
			b.SetBytes(int64(len(msgs) * 256))
			b.ReportAllocs()
			for b.Loop() {
				p.write(mpub)
				fins = fins[:0]
				for range msgs {
					m := c.message()
					fins = append(append(append(fins, "FIN "...), m.ID[:]...), '\n')
				}
				c.write(fins)
				p.expect("OK")
			}
		})
	}
}
