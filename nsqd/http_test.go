package nsqd_test

import (
	"bufio"
	"bytes"
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
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

const (
	ctJSON = "application/json; charset=utf-8"
	ctText = "text/plain; charset=utf-8"
)

// httpTestClient has a timeout so that a hung server fails the test instead of
// the test binary.
var httpTestClient = &http.Client{Timeout: 10 * time.Second}

type httpResponse struct {
	status int
	header http.Header
	body   string
}

// request sends one request; body may be nil, a string, []byte or an
// io.Reader (sent chunked, without Content-Length).
func httpRequest(t testing.TB, method, url string, body any, hdr ...string) httpResponse {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked
	default:
		t.Fatalf("request: body of type %T", body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpTestClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return httpResponse{resp.StatusCode, resp.Header, string(b)}
}

// mustOK posts and fails unless the answer is 200.
func httpOK(t testing.TB, method, url string, body any) {
	t.Helper()
	if r := httpRequest(t, method, url, body); r.status != http.StatusOK {
		t.Fatalf("%s %s = %d %q, want 200", method, url, r.status, r.body)
	}
}

func httpErr(code string) string { return `{"message":"` + code + `"}` }

// mpubBody builds a binary /mpub body ([count][size][data]…).
func httpMPUBBody(t testing.TB, bodies ...string) []byte {
	t.Helper()
	var bs [][]byte
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	cmd, err := nsq.MultiPublish("unused", bs)
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Body
}

// startNSQD starts an nsqd with small size limits so that the size errors
// are cheap to provoke.
func httpStartNSQD(t testing.TB, mutate func(*nsqd.Config)) (*nsqtest.NSQD, string) {
	t.Helper()
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.MaxMsgSize = 100
		c.MaxBodySize = 1000
		if mutate != nil {
			mutate(c)
		}
	})
	return n, "http://" + n.HTTPAddr
}

func TestHTTPRoutes(t *testing.T) {
	_, base := httpStartNSQD(t, nil)
	httpOK(t, "POST", base+"/topic/create?topic=exists", nil)
	httpOK(t, "POST", base+"/channel/create?topic=exists&channel=ch", nil)

	big := strings.Repeat("x", 101)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		want   string // exact body; "*" means any
		ct     string // Content-Type; "" means none
	}{
		{"ping", "GET", "/ping", nil, 200, "OK", ctText},
		{"ping HEAD", "HEAD", "/ping", nil, 405, "", ctJSON},
		{"not found", "GET", "/nope", nil, 404, httpErr("NOT_FOUND"), ctJSON},
		{"not found root", "GET", "/", nil, 404, httpErr("NOT_FOUND"), ctJSON},
		{"not found trailing slash", "GET", "/stats/", nil, 404, httpErr("NOT_FOUND"), ctJSON},
		{"method not allowed", "POST", "/stats", nil, 405, httpErr("METHOD_NOT_ALLOWED"), ctJSON},
		{"method not allowed pub", "GET", "/pub?topic=t", nil, 405, httpErr("METHOD_NOT_ALLOWED"), ctJSON},
		{"method not allowed config", "DELETE", "/config/log_level", nil, 405, httpErr("METHOD_NOT_ALLOWED"), ctJSON},
		{"options", "OPTIONS", "/stats", nil, 200, "", ""},
		{"info", "GET", "/info", nil, 200, "*", ctJSON},
		{"stats text", "GET", "/stats", nil, 200, "*", ctText},
		{"stats json", "GET", "/stats?format=json", nil, 200, "*", ctJSON},
		{"stats bad query", "GET", "/stats?format=json&topic=%zz", nil, 400, httpErr("INVALID_REQUEST"), ctJSON},
		{"stats semicolon", "GET", "/stats?format=json;topic=a", nil, 400, httpErr("INVALID_REQUEST"), ctJSON},

		{"pub", "POST", "/pub?topic=t1", "hello", 200, "OK", ctText},
		{"pub escaped topic", "POST", "/pub?topic=%74%31", "hello", 200, "OK", ctText},
		{"pub max size", "POST", "/pub?topic=t1", strings.Repeat("x", 100), 200, "OK", ctText},
		{"pub too big", "POST", "/pub?topic=t1", big, 413, httpErr("MSG_TOO_BIG"), ctJSON},
		{"pub too big chunked", "POST", "/pub?topic=t1", strings.NewReader(big), 413, httpErr("MSG_TOO_BIG"), ctJSON},
		{"pub max size chunked", "POST", "/pub?topic=t1", strings.NewReader(big[:100]), 200, "OK", ctText},
		{"pub empty", "POST", "/pub?topic=t1", "", 400, httpErr("MSG_EMPTY"), ctJSON},
		{"pub empty before topic", "POST", "/pub", "", 400, httpErr("MSG_EMPTY"), ctJSON},
		{"pub too big before topic", "POST", "/pub?topic=bad$", big, 413, httpErr("MSG_TOO_BIG"), ctJSON},
		{"pub missing topic", "POST", "/pub", "x", 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"pub empty topic", "POST", "/pub?topic=", "x", 400, httpErr("INVALID_TOPIC"), ctJSON},
		{"pub invalid topic", "POST", "/pub?topic=bad$", "x", 400, httpErr("INVALID_TOPIC"), ctJSON},
		{"pub long topic", "POST", "/pub?topic=" + strings.Repeat("a", 65), "x", 400, httpErr("INVALID_TOPIC"), ctJSON},
		{"pub bad escape", "POST", "/pub?topic=t%zz", "x", 400, httpErr("INVALID_REQUEST"), ctJSON},
		{"pub defer", "POST", "/pub?topic=t1&defer=3600000", "x", 200, "OK", ctText},
		{"pub defer not a number", "POST", "/pub?topic=t1&defer=soon", "x", 400, httpErr("INVALID_DEFER"), ctJSON},
		{"pub defer negative", "POST", "/pub?topic=t1&defer=-1", "x", 400, httpErr("INVALID_DEFER"), ctJSON},
		{"pub defer over max", "POST", "/pub?topic=t1&defer=3600001", "x", 400, httpErr("INVALID_DEFER"), ctJSON},

		{"mpub text", "POST", "/mpub?topic=t2", "a\n\nb\n", 200, "OK", ctText},
		{"mpub nothing", "POST", "/mpub?topic=t2", "\n\n", 200, "OK", ctText},
		{"mpub text too big", "POST", "/mpub?topic=t2", strings.Repeat("a\n", 501), 413, httpErr("BODY_TOO_BIG"), ctJSON},
		{"mpub text too big chunked", "POST", "/mpub?topic=t2", strings.NewReader(strings.Repeat("a\n", 501)), 413, httpErr("BODY_TOO_BIG"), ctJSON},
		{"mpub text message too big", "POST", "/mpub?topic=t2", "a\n" + big + "\nb", 413, httpErr("MSG_TOO_BIG"), ctJSON},
		{"mpub message too big before body", "POST", "/mpub?topic=t2", strings.NewReader(big + "\n" + strings.Repeat("a\n", 500)), 413, httpErr("MSG_TOO_BIG"), ctJSON},
		{"mpub missing topic", "POST", "/mpub", "a", 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"mpub invalid topic", "POST", "/mpub?topic=a/b", "a", 400, httpErr("INVALID_TOPIC"), ctJSON},
		{"mpub binary", "POST", "/mpub?topic=t2&binary=true", httpMPUBBody(t, "a", "b"), 200, "OK", ctText},
		{"mpub binary 1", "POST", "/mpub?topic=t2&binary=1", httpMPUBBody(t, "a"), 200, "OK", ctText},
		{"mpub binary deprecated value", "POST", "/mpub?topic=t2&binary=yes", httpMPUBBody(t, "a"), 200, "OK", ctText},
		{"mpub binary trailing bytes", "POST", "/mpub?topic=t2&binary=true", append(httpMPUBBody(t, "a"), "junk"...), 200, "OK", ctText},
		{"mpub binary zero count", "POST", "/mpub?topic=t2&binary=true", []byte{0, 0, 0, 0}, 413, httpErr("BAD_BODY"), ctJSON},
		{"mpub binary no count", "POST", "/mpub?topic=t2&binary=true", []byte{0, 0}, 413, httpErr("BAD_BODY"), ctJSON},
		{"mpub binary count too big", "POST", "/mpub?topic=t2&binary=true", []byte{0, 0, 1, 0}, 413, httpErr("BAD_BODY"), ctJSON},
		{"mpub binary message too big", "POST", "/mpub?topic=t2&binary=true", httpMPUBBody(t, "a", big), 413, httpErr("BAD_MESSAGE"), ctJSON},
		{"mpub binary empty message", "POST", "/mpub?topic=t2&binary=true", httpMPUBBody(t, "a", ""), 413, httpErr("BAD_MESSAGE"), ctJSON},
		{"mpub binary truncated", "POST", "/mpub?topic=t2&binary=true", httpMPUBBody(t, "abc", "def")[:15], 413, httpErr("BAD_MESSAGE"), ctJSON},
		{"mpub binary body too big", "POST", "/mpub?topic=t2&binary=true", make([]byte, 1001), 413, httpErr("BODY_TOO_BIG"), ctJSON},
		{"mpub binary body too big chunked", "POST", "/mpub?topic=t2&binary=true", bytes.NewReader(make([]byte, 1001)), 413, httpErr("BODY_TOO_BIG"), ctJSON},

		{"topic create missing", "POST", "/topic/create", nil, 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"topic create invalid", "POST", "/topic/create?topic=a.b$", nil, 400, httpErr("INVALID_TOPIC"), ctJSON},
		{"topic create bad query", "POST", "/topic/create?topic=%", nil, 400, httpErr("INVALID_REQUEST"), ctJSON},
		{"topic create", "POST", "/topic/create?topic=created", nil, 200, "", ""},
		{"topic create again", "POST", "/topic/create?topic=created", nil, 200, "", ""},
		{"topic delete missing", "POST", "/topic/delete", nil, 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"topic delete invalid name", "POST", "/topic/delete?topic=bad$", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"topic delete unknown", "POST", "/topic/delete?topic=unknown", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"topic delete", "POST", "/topic/delete?topic=created", nil, 200, "", ""},
		{"topic empty missing", "POST", "/topic/empty", nil, 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"topic empty invalid", "POST", "/topic/empty?topic=bad$", nil, 400, httpErr("INVALID_TOPIC"), ctJSON},
		{"topic empty unknown", "POST", "/topic/empty?topic=unknown", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"topic empty", "POST", "/topic/empty?topic=exists", nil, 200, "", ""},
		{"topic pause missing", "POST", "/topic/pause", nil, 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"topic pause invalid name", "POST", "/topic/pause?topic=bad$", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"topic pause unknown", "POST", "/topic/pause?topic=unknown", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"topic unpause unknown", "POST", "/topic/unpause?topic=unknown", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"topic pause", "POST", "/topic/pause?topic=exists", nil, 200, "", ""},
		{"topic unpause", "POST", "/topic/unpause?topic=exists", nil, 200, "", ""},

		{"channel create missing topic", "POST", "/channel/create?channel=c", nil, 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"channel create invalid topic", "POST", "/channel/create?topic=bad$&channel=c", nil, 400, httpErr("INVALID_ARG_TOPIC"), ctJSON},
		{"channel create missing channel", "POST", "/channel/create?topic=exists", nil, 400, httpErr("MISSING_ARG_CHANNEL"), ctJSON},
		{"channel create invalid channel", "POST", "/channel/create?topic=exists&channel=bad$", nil, 400, httpErr("INVALID_ARG_CHANNEL"), ctJSON},
		{"channel create unknown topic", "POST", "/channel/create?topic=unknown&channel=c", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"channel create bad query", "POST", "/channel/create?topic=exists&channel=c%zz", nil, 400, httpErr("INVALID_REQUEST"), ctJSON},
		{"channel create", "POST", "/channel/create?topic=exists&channel=c2", nil, 200, "", ""},
		{"channel create ephemeral", "POST", "/channel/create?topic=exists&channel=c3%23ephemeral", nil, 200, "", ""},
		{"channel delete unknown topic", "POST", "/channel/delete?topic=unknown&channel=c", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"channel delete unknown", "POST", "/channel/delete?topic=exists&channel=nope", nil, 404, httpErr("CHANNEL_NOT_FOUND"), ctJSON},
		{"channel delete missing channel", "POST", "/channel/delete?topic=exists", nil, 400, httpErr("MISSING_ARG_CHANNEL"), ctJSON},
		{"channel delete", "POST", "/channel/delete?topic=exists&channel=c2", nil, 200, "", ""},
		{"channel empty unknown topic", "POST", "/channel/empty?topic=unknown&channel=c", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"channel empty unknown", "POST", "/channel/empty?topic=exists&channel=nope", nil, 404, httpErr("CHANNEL_NOT_FOUND"), ctJSON},
		{"channel empty missing topic", "POST", "/channel/empty", nil, 400, httpErr("MISSING_ARG_TOPIC"), ctJSON},
		{"channel empty", "POST", "/channel/empty?topic=exists&channel=ch", nil, 200, "", ""},
		{"channel pause unknown topic", "POST", "/channel/pause?topic=unknown&channel=c", nil, 404, httpErr("TOPIC_NOT_FOUND"), ctJSON},
		{"channel pause unknown", "POST", "/channel/pause?topic=exists&channel=nope", nil, 404, httpErr("CHANNEL_NOT_FOUND"), ctJSON},
		{"channel pause invalid channel", "POST", "/channel/pause?topic=exists&channel=", nil, 400, httpErr("INVALID_ARG_CHANNEL"), ctJSON},
		{"channel unpause unknown", "POST", "/channel/unpause?topic=exists&channel=nope", nil, 404, httpErr("CHANNEL_NOT_FOUND"), ctJSON},
		{"channel pause", "POST", "/channel/pause?topic=exists&channel=ch", nil, 200, "", ""},
		{"channel unpause", "POST", "/channel/unpause?topic=exists&channel=ch", nil, 200, "", ""},

		{"config get", "GET", "/config/max_msg_size", nil, 200, "100", ctJSON},
		{"config get unknown", "GET", "/config/nope", nil, 400, httpErr("INVALID_OPTION"), ctJSON},
		{"config put unknown", "PUT", "/config/max_msg_size", "5", 400, httpErr("INVALID_OPTION"), ctJSON},
		{"config put empty", "PUT", "/config/log_level", "", 413, httpErr("INVALID_VALUE"), ctJSON},
		{"config put empty unknown", "PUT", "/config/nope", "", 413, httpErr("INVALID_VALUE"), ctJSON},
		{"config put too big", "PUT", "/config/log_level", big, 413, httpErr("INVALID_VALUE"), ctJSON},
		{"config put bad level", "PUT", "/config/log_level", "loud", 400, httpErr("INVALID_VALUE"), ctJSON},
		{"config put quoted level", "PUT", "/config/log_level", `"info"`, 400, httpErr("INVALID_VALUE"), ctJSON},
		{"config put bad lookupd", "PUT", "/config/nsqlookupd_tcp_addresses", "127.0.0.1:4160", 400, httpErr("INVALID_VALUE"), ctJSON},

		{"setblockrate", "PUT", "/debug/setblockrate?rate=0", nil, 200, "", ""},
		{"setblockrate bad", "PUT", "/debug/setblockrate?rate=x", nil, 400, `invalid block rate : strconv.Atoi: parsing "x": invalid syntax`, ctText},
		{"setblockrate method", "POST", "/debug/setblockrate?rate=0", nil, 405, httpErr("METHOD_NOT_ALLOWED"), ctJSON},
		{"freememory", "POST", "/debug/freememory", nil, 200, "", ""},
		{"pprof index", "GET", "/debug/pprof/", nil, 200, "*", "text/html; charset=utf-8"},
		{"pprof cmdline", "GET", "/debug/pprof/cmdline", nil, 200, "*", ctText},
		{"pprof heap", "GET", "/debug/pprof/heap?debug=1", nil, 200, "*", ctText},
		{"pprof goroutine", "GET", "/debug/pprof/goroutine?debug=1", nil, 200, "*", ctText},
		{"pprof symbol post", "POST", "/debug/pprof/symbol", "0x0", 200, "*", ctText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httpRequest(t, tt.method, base+tt.path, tt.body)
			if r.status != tt.status {
				t.Errorf("%s %s = %d %q, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if tt.want != "*" && r.body != tt.want && tt.method != "HEAD" {
				t.Errorf("%s %s body = %q, want %q", tt.method, tt.path, r.body, tt.want)
			}
			if got := r.header.Get("X-NSQ-Content-Type"); got != "nsq; version=1.0" {
				t.Errorf("%s %s X-NSQ-Content-Type = %q, want %q", tt.method, tt.path, got, "nsq; version=1.0")
			}
			if got := r.header.Get("Content-Type"); got != tt.ct {
				t.Errorf("%s %s Content-Type = %q, want %q", tt.method, tt.path, got, tt.ct)
			}
			if tt.status == 405 || tt.method == "OPTIONS" {
				if r.header.Get("Allow") == "" {
					t.Errorf("%s %s has no Allow header", tt.method, tt.path)
				}
			}
		})
	}
}

// TestHTTPTooBigByContentLength checks that /pub and /mpub refuse a body by
// its Content-Length alone: the client sends only headers, and the answer
// must come without the server waiting for the body. (The length is over
// the 256 KiB net/http would otherwise drain before answering.)
func TestHTTPTooBigByContentLength(t *testing.T) {
	n, _ := httpStartNSQD(t, nil)
	tests := []struct {
		path   string
		length int
		want   string
	}{
		{"/pub?topic=t", 1 << 20, httpErr("MSG_TOO_BIG")},
		{"/mpub?topic=t", 1 << 20, httpErr("BODY_TOO_BIG")},
		{"/mpub?topic=t&binary=true", 1 << 20, httpErr("BODY_TOO_BIG")},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := nsqtest.Dial(t, n.HTTPAddr)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tt.path, tt.length)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer before the body was sent: %v", err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 100))
			if resp.StatusCode != 413 || string(b) != tt.want {
				t.Errorf("POST %s = %d %q, want 413 %q", tt.path, resp.StatusCode, b, tt.want)
			}
		})
	}
}

func TestHTTPAllowHeader(t *testing.T) {
	_, base := httpStartNSQD(t, nil)
	tests := []struct{ method, path, want string }{
		{"POST", "/stats", "GET, OPTIONS"},
		{"HEAD", "/ping", "GET, OPTIONS"},
		{"OPTIONS", "/config/x", "GET, OPTIONS, PUT"},
		{"PUT", "/debug/pprof/symbol", "GET, OPTIONS, POST"},
		{"GET", "/topic/pause?topic=x", "OPTIONS, POST"},
	}
	for _, tt := range tests {
		r := httpRequest(t, tt.method, base+tt.path, nil)
		if got := r.header.Get("Allow"); got != tt.want {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

type httpMsg struct {
	body string
	at   time.Time
}

// consume subscribes a go-nsq consumer and returns what it receives.
func httpConsume(t testing.TB, tcpAddr, topic, channel string) <-chan httpMsg {
	t.Helper()
	c, err := nsq.NewConsumer(topic, channel, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	ch := make(chan httpMsg, 100)
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		ch <- httpMsg{string(m.Body), time.Now()}
		return nil
	}))
	if err := c.ConnectToNSQD(tcpAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		select {
		case <-c.StopChan:
		case <-time.After(5 * time.Second):
			t.Error("consumer did not stop")
		}
	})
	return ch
}

func httpNext(t testing.TB, ch <-chan httpMsg) httpMsg {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return httpMsg{}
	}
}

// bodies receives n messages and returns their bodies in arrival order.
func httpBodies(t testing.TB, ch <-chan httpMsg, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, httpNext(t, ch).body)
	}
	return out
}

func TestHTTPPubConsume(t *testing.T) {
	n, base := httpStartNSQD(t, nil)
	httpOK(t, "POST", base+"/topic/create?topic=pubsub", nil)
	msgs := httpConsume(t, n.TCPAddr, "pubsub", "ch")

	httpOK(t, "POST", base+"/pub?topic=pubsub", "hello over http")
	if got := httpNext(t, msgs).body; got != "hello over http" {
		t.Fatalf("httpMsg %q, want %q", got, "hello over http")
	}

	// Text MPUB: one message per non-empty line, in order.
	httpOK(t, "POST", base+"/mpub?topic=pubsub", "one\n\ntwo\nthree\n")
	if got, want := httpBodies(t, msgs, 3), []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Fatalf("text mpub: httpMsg %q, want %q", got, want)
	}

	// Binary MPUB with the body go-nsq's MultiPublish builds.
	httpOK(t, "POST", base+"/mpub?topic=pubsub&binary=true", httpMPUBBody(t, "b1", "line\nbreak", "b3"))
	if got, want := httpBodies(t, msgs, 3), []string{"b1", "line\nbreak", "b3"}; !slices.Equal(got, want) {
		t.Fatalf("binary mpub: httpMsg %q, want %q", got, want)
	}

	// binary=false means text even for a binary-looking body.
	httpOK(t, "POST", base+"/mpub?topic=pubsub&binary=false", "x\ny")
	if got, want := httpBodies(t, msgs, 2), []string{"x", "y"}; !slices.Equal(got, want) {
		t.Fatalf("binary=false mpub: httpMsg %q, want %q", got, want)
	}
}

func TestHTTPPubDefer(t *testing.T) {
	n, base := httpStartNSQD(t, nil)
	httpOK(t, "POST", base+"/topic/create?topic=deferred", nil)
	httpOK(t, "POST", base+"/channel/create?topic=deferred&channel=ch", nil)
	msgs := httpConsume(t, n.TCPAddr, "deferred", "ch")

	const delay = 300 * time.Millisecond
	start := time.Now()
	httpOK(t, "POST", base+fmt.Sprintf("/pub?topic=deferred&defer=%d", delay.Milliseconds()), "later")
	httpOK(t, "POST", base+"/pub?topic=deferred", "now")

	first, second := httpNext(t, msgs), httpNext(t, msgs)
	if first.body != "now" || second.body != "later" {
		t.Fatalf("httpMsg %q then %q, want %q then %q", first.body, second.body, "now", "later")
	}
	if d := second.at.Sub(start); d < delay {
		t.Fatalf("deferred message arrived %v after publishing, want at least %v", d, delay)
	}
}

// stats reads /stats?format=json with the given query into NSQ's schema.
func httpStats(t testing.TB, base, query string) nsqd.Stats {
	t.Helper()
	r := httpRequest(t, "GET", base+"/stats?format=json&"+query, nil)
	if r.status != 200 {
		t.Fatalf("/stats = %d %q", r.status, r.body)
	}
	var st nsqd.Stats
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatalf("/stats: %v in %q", err, r.body)
	}
	return st
}

func httpTopicStats(t testing.TB, base, topic string) nsqd.TopicStats {
	t.Helper()
	st := httpStats(t, base, "topic="+topic)
	if len(st.Topics) != 1 {
		t.Fatalf("/stats?topic=%s has %d topics, want 1", topic, len(st.Topics))
	}
	return st.Topics[0]
}

func httpChannelStats(t testing.TB, base, topic, channel string) nsqd.ChannelStats {
	t.Helper()
	for _, c := range httpTopicStats(t, base, topic).Channels {
		if c.ChannelName == channel {
			return c
		}
	}
	t.Fatalf("/stats: topic %s has no channel %s", topic, channel)
	return nsqd.ChannelStats{}
}

func TestHTTPPauseEmptyDelete(t *testing.T) {
	n, base := httpStartNSQD(t, nil)

	t.Run("channel pause", func(t *testing.T) {
		httpOK(t, "POST", base+"/topic/create?topic=cp", nil)
		httpOK(t, "POST", base+"/channel/create?topic=cp&channel=ch", nil)
		httpOK(t, "POST", base+"/channel/pause?topic=cp&channel=ch", nil)
		httpOK(t, "POST", base+"/mpub?topic=cp", "a\nb")
		msgs := httpConsume(t, n.TCPAddr, "cp", "ch")
		// Once the consumer has credit, a running channel would deliver.
		nsqtest.Eventually(t, 5*time.Second, "consumer with RDY > 0", func() bool {
			c := httpChannelStats(t, base, "cp", "ch")
			return len(c.Clients) == 1 && c.Clients[0].ReadyCount > 0
		})
		c := httpChannelStats(t, base, "cp", "ch")
		if !c.Paused || c.Depth != 2 || c.InFlightCount != 0 {
			t.Fatalf("paused channel: paused=%v depth=%d in_flight=%d, want true 2 0", c.Paused, c.Depth, c.InFlightCount)
		}
		select {
		case m := <-msgs:
			t.Fatalf("paused channel delivered %q", m.body)
		default:
		}
		httpOK(t, "POST", base+"/channel/unpause?topic=cp&channel=ch", nil)
		if got := httpBodies(t, msgs, 2); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("after unpause httpMsg %q", got)
		}
		if c := httpChannelStats(t, base, "cp", "ch"); c.Paused {
			t.Fatal("channel still paused after /channel/unpause")
		}
	})

	t.Run("topic pause", func(t *testing.T) {
		httpOK(t, "POST", base+"/topic/create?topic=tp", nil)
		httpOK(t, "POST", base+"/channel/create?topic=tp&channel=ch", nil)
		httpOK(t, "POST", base+"/topic/pause?topic=tp", nil)
		httpOK(t, "POST", base+"/pub?topic=tp", "held")
		ts := httpTopicStats(t, base, "tp")
		if !ts.Paused || ts.Depth != 1 || ts.Channels[0].Depth != 0 {
			t.Fatalf("paused topic: paused=%v depth=%d channel depth=%d, want true 1 0", ts.Paused, ts.Depth, ts.Channels[0].Depth)
		}
		httpOK(t, "POST", base+"/topic/unpause?topic=tp", nil)
		ts = httpTopicStats(t, base, "tp")
		if ts.Paused || ts.Depth != 0 || ts.Channels[0].Depth != 1 {
			t.Fatalf("unpaused topic: paused=%v depth=%d channel depth=%d, want false 0 1", ts.Paused, ts.Depth, ts.Channels[0].Depth)
		}
	})

	t.Run("topic empty", func(t *testing.T) {
		httpOK(t, "POST", base+"/mpub?topic=te", "1\n2\n3")
		if d := httpTopicStats(t, base, "te").Depth; d != 3 {
			t.Fatalf("topic depth = %d, want 3", d)
		}
		httpOK(t, "POST", base+"/topic/empty?topic=te", nil)
		if d := httpTopicStats(t, base, "te").Depth; d != 0 {
			t.Fatalf("emptied topic depth = %d, want 0", d)
		}
	})

	t.Run("channel empty", func(t *testing.T) {
		httpOK(t, "POST", base+"/topic/create?topic=ce", nil)
		httpOK(t, "POST", base+"/channel/create?topic=ce&channel=ch", nil)
		httpOK(t, "POST", base+"/mpub?topic=ce", "1\n2\n3")
		if d := httpChannelStats(t, base, "ce", "ch").Depth; d != 3 {
			t.Fatalf("channel depth = %d, want 3", d)
		}
		httpOK(t, "POST", base+"/channel/empty?topic=ce&channel=ch", nil)
		if d := httpChannelStats(t, base, "ce", "ch").Depth; d != 0 {
			t.Fatalf("emptied channel depth = %d, want 0", d)
		}
	})

	t.Run("delete", func(t *testing.T) {
		httpOK(t, "POST", base+"/topic/create?topic=del", nil)
		httpOK(t, "POST", base+"/channel/create?topic=del&channel=a", nil)
		httpOK(t, "POST", base+"/channel/create?topic=del&channel=b", nil)
		httpOK(t, "POST", base+"/channel/delete?topic=del&channel=a", nil)
		if cs := httpTopicStats(t, base, "del").Channels; len(cs) != 1 || cs[0].ChannelName != "b" {
			t.Fatalf("after deleting channel a: channels %+v, want only b", cs)
		}
		httpOK(t, "POST", base+"/topic/delete?topic=del", nil)
		if st := httpStats(t, base, "topic=del"); st.Topics != nil {
			t.Fatalf("deleted topic still in /stats: %+v", st.Topics)
		}
	})
}

// getJSON decodes a JSON httpResponse into a generic value, to check field
// names and nulls.
func httpGetJSON(t testing.TB, url string, hdr ...string) map[string]any {
	t.Helper()
	r := httpRequest(t, "GET", url, nil, hdr...)
	if r.status != 200 {
		t.Fatalf("GET %s = %d %q", url, r.status, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("GET %s: %v in %q", url, err, r.body)
	}
	return m
}

func httpKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func httpHasKeys(t testing.TB, what string, m map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s has no %q field; fields: %v", what, k, httpKeys(m))
		}
	}
}

func TestHTTPStatsJSON(t *testing.T) {
	n, base := httpStartNSQD(t, nil)

	// A fresh nsqd: no topics ([]), no producers (null).
	m := httpGetJSON(t, base+"/stats?format=json")
	if got, want := httpKeys(m), []string{"health", "memory", "producers", "start_time", "topics", "version"}; !slices.Equal(got, want) {
		t.Fatalf("/stats fields = %v, want %v", got, want)
	}
	if m["version"] != "1.3.0" || m["health"] != "OK" {
		t.Errorf("version, health = %v, %v; want 1.3.0, OK", m["version"], m["health"])
	}
	if st, ok := m["start_time"].(float64); !ok || time.Since(time.Unix(int64(st), 0)) > time.Minute {
		t.Errorf("start_time = %v, want about now in Unix seconds", m["start_time"])
	}
	if ts, ok := m["topics"].([]any); !ok || len(ts) != 0 {
		t.Errorf("topics = %#v, want []", m["topics"])
	}
	if p, ok := m["producers"]; !ok || p != nil {
		t.Errorf("producers = %#v, want null", p)
	}
	httpHasKeys(t, "memory", m["memory"].(map[string]any), "heap_objects", "heap_idle_bytes", "heap_in_use_bytes",
		"heap_released_bytes", "gc_pause_usec_100", "gc_pause_usec_99", "gc_pause_usec_95", "next_gc_bytes", "gc_total_runs")

	// Two topics created out of order, a consumer and a producer.
	httpOK(t, "POST", base+"/topic/create?topic=zeta", nil)
	httpOK(t, "POST", base+"/topic/create?topic=alpha", nil)
	httpOK(t, "POST", base+"/channel/create?topic=alpha&channel=ch", nil)
	httpOK(t, "POST", base+"/channel/create?topic=alpha&channel=idle", nil)
	httpConsume(t, n.TCPAddr, "alpha", "ch")
	p, err := nsq.NewProducer(n.TCPAddr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(nil, nsq.LogLevelError)
	defer p.Stop()
	if err := p.Publish("zeta", []byte("from tcp")); err != nil {
		t.Fatal(err)
	}
	nsqtest.Eventually(t, 5*time.Second, "consumer in /stats", func() bool {
		return httpChannelStats(t, base, "alpha", "ch").ClientCount == 1
	})

	m = httpGetJSON(t, base+"/stats?format=json")
	topics := m["topics"].([]any)
	if len(topics) != 2 {
		t.Fatalf("%d topics, want 2", len(topics))
	}
	alpha := topics[0].(map[string]any)
	if alpha["topic_name"] != "alpha" || topics[1].(map[string]any)["topic_name"] != "zeta" {
		t.Fatalf("topics not sorted by name: %v, %v", alpha["topic_name"], topics[1].(map[string]any)["topic_name"])
	}
	wantTopic := []string{"backend_depth", "channels", "depth", "e2e_processing_latency", "message_bytes", "message_count", "paused", "topic_name"}
	if got := httpKeys(alpha); !slices.Equal(got, wantTopic) {
		t.Errorf("topic fields = %v, want %v", got, wantTopic)
	}
	e2e := alpha["e2e_processing_latency"].(map[string]any)
	if !reflect.DeepEqual(e2e, map[string]any{"count": 0.0, "percentiles": nil}) {
		t.Errorf("e2e_processing_latency = %v, want {count:0 percentiles:null}", e2e)
	}
	chans := alpha["channels"].([]any)
	if len(chans) != 2 || chans[0].(map[string]any)["channel_name"] != "ch" || chans[1].(map[string]any)["channel_name"] != "idle" {
		t.Fatalf("alpha channels = %v, want ch, idle", chans)
	}
	ch := chans[0].(map[string]any)
	wantChannel := []string{"backend_depth", "channel_name", "client_count", "clients", "deferred_count", "depth",
		"e2e_processing_latency", "in_flight_count", "message_count", "paused", "requeue_count", "timeout_count"}
	if got := httpKeys(ch); !slices.Equal(got, wantChannel) {
		t.Errorf("channel fields = %v, want %v", got, wantChannel)
	}
	clients := ch["clients"].([]any)
	if len(clients) != 1 {
		t.Fatalf("%d clients, want 1", len(clients))
	}
	cl := clients[0].(map[string]any)
	httpHasKeys(t, "client", cl, "client_id", "hostname", "version", "remote_address", "state", "ready_count",
		"in_flight_count", "message_count", "finish_count", "requeue_count", "connect_ts", "sample_rate",
		"deflate", "snappy", "user_agent", "tls", "tls_cipher_suite", "tls_version",
		"tls_negotiated_protocol", "tls_negotiated_protocol_is_mutual")
	if cl["version"] != "V2" {
		t.Errorf("client version = %v, want V2", cl["version"])
	}
	if idle := chans[1].(map[string]any)["clients"]; !reflect.DeepEqual(idle, []any{}) {
		t.Errorf("clients of a channel without consumers = %#v, want []", idle)
	}
	producers, ok := m["producers"].([]any)
	if !ok || len(producers) != 1 {
		t.Fatalf("producers = %#v, want one", m["producers"])
	}
	pc := producers[0].(map[string]any)["pub_counts"]
	if !reflect.DeepEqual(pc, []any{map[string]any{"topic": "zeta", "count": 1.0}}) {
		t.Errorf("producer pub_counts = %v, want [{zeta 1}]", pc)
	}

	tests := []struct {
		query string
		check func(t *testing.T, m map[string]any)
	}{
		{"include_clients=false", func(t *testing.T, m map[string]any) {
			if v, ok := m["producers"]; !ok || v != nil {
				t.Errorf("producers = %#v, want null", v)
			}
			ch := m["topics"].([]any)[0].(map[string]any)["channels"].([]any)[0].(map[string]any)
			if v, ok := ch["clients"]; !ok || v != nil {
				t.Errorf("clients = %#v, want null", v)
			}
			if ch["client_count"] != 1.0 {
				t.Errorf("client_count = %v, want 1", ch["client_count"])
			}
		}},
		{"include_clients=0&include_mem=0", func(t *testing.T, m map[string]any) {
			if _, ok := m["memory"]; ok {
				t.Errorf("memory present with include_mem=0")
			}
			if m["producers"] != nil {
				t.Errorf("producers = %#v, want null", m["producers"])
			}
		}},
		{"include_clients=maybe", func(t *testing.T, m map[string]any) {
			if ps, _ := m["producers"].([]any); len(ps) != 1 {
				t.Errorf("include_clients=maybe: producers = %#v, want the default (included)", m["producers"])
			}
		}},
		{"include_mem=false", func(t *testing.T, m map[string]any) {
			if _, ok := m["memory"]; ok {
				t.Errorf("memory present with include_mem=false")
			}
		}},
		{"topic=unknown", func(t *testing.T, m map[string]any) {
			for _, k := range []string{"topics", "producers"} {
				if v, ok := m[k]; !ok || v != nil {
					t.Errorf("%s = %#v, want null", k, v)
				}
			}
			if _, ok := m["memory"]; !ok {
				t.Errorf("memory missing")
			}
		}},
		{"topic=zeta", func(t *testing.T, m map[string]any) {
			ts := m["topics"].([]any)
			if len(ts) != 1 || ts[0].(map[string]any)["topic_name"] != "zeta" {
				t.Errorf("topics = %v, want only zeta", ts)
			}
			if ts[0].(map[string]any)["message_count"] != 1.0 {
				t.Errorf("zeta message_count = %v, want 1", ts[0].(map[string]any)["message_count"])
			}
		}},
		{"topic=alpha&channel=idle", func(t *testing.T, m map[string]any) {
			cs := m["topics"].([]any)[0].(map[string]any)["channels"].([]any)
			if len(cs) != 1 || cs[0].(map[string]any)["channel_name"] != "idle" {
				t.Errorf("channels = %v, want only idle", cs)
			}
		}},
		{"topic=alpha&channel=nope", func(t *testing.T, m map[string]any) {
			if ts, ok := m["topics"].([]any); !ok || len(ts) != 0 {
				t.Errorf("topics = %#v, want []", m["topics"])
			}
		}},
		{"channel=ch", func(t *testing.T, m map[string]any) {
			ts := m["topics"].([]any)
			if len(ts) != 1 || ts[0].(map[string]any)["topic_name"] != "alpha" {
				t.Errorf("topics = %v, want only alpha (the one with channel ch)", ts)
			}
		}},
		{"topic=", func(t *testing.T, m map[string]any) {
			if ts := m["topics"].([]any); len(ts) != 2 {
				t.Errorf("empty topic filter: %d topics, want 2", len(ts))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			tt.check(t, httpGetJSON(t, base+"/stats?format=json&"+tt.query))
		})
	}
}

func TestHTTPStatsText(t *testing.T) {
	n, base := httpStartNSQD(t, nil)

	r := httpRequest(t, "GET", base+"/stats", nil)
	if r.status != 200 || r.header.Get("Content-Type") != ctText {
		t.Fatalf("/stats = %d %q", r.status, r.header.Get("Content-Type"))
	}
	for _, want := range []string{"nsqd v1.3.0 ", "\nstart_time ", "\nuptime ", "\n\nHealth: OK\n",
		"\n\nMemory:\n" + fmt.Sprintf("   %-25s\t", "heap_objects"), fmt.Sprintf("\n   %-25s\t", "gc_total_runs"),
		"\n\nTopics: None\n", "\n\nProducers: None\n"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("text /stats lacks %q:\n%s", want, r.body)
		}
	}
	if !strings.HasPrefix(r.body, "nsqd v1.3.0 ") {
		t.Errorf("text /stats starts %q, want the version line", r.body[:min(len(r.body), 30)])
	}
	if b := httpRequest(t, "GET", base+"/stats?format=text&include_mem=false", nil).body; strings.Contains(b, "Memory:") {
		t.Errorf("include_mem=false still shows memory:\n%s", b)
	}

	httpOK(t, "POST", base+"/topic/create?topic=txt", nil)
	httpOK(t, "POST", base+"/channel/create?topic=txt&channel=ch", nil)
	httpOK(t, "POST", base+"/channel/create?topic=txt&channel=held", nil)
	httpOK(t, "POST", base+"/channel/pause?topic=txt&channel=held", nil)
	httpOK(t, "POST", base+"/topic/pause?topic=txt", nil)
	httpOK(t, "POST", base+"/pub?topic=txt", "m")
	httpConsume(t, n.TCPAddr, "txt", "ch")
	p, err := nsq.NewProducer(n.TCPAddr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(nil, nsq.LogLevelError)
	defer p.Stop()
	if err := p.Publish("txt", []byte("from tcp")); err != nil {
		t.Fatal(err)
	}
	nsqtest.Eventually(t, 5*time.Second, "consumer in /stats", func() bool {
		return httpChannelStats(t, base, "txt", "ch").ClientCount == 1
	})

	body := httpRequest(t, "GET", base+"/stats?include_mem=false", nil).body
	for _, want := range []string{
		"\n\nTopics:\n*P [txt            ] depth: 2     be-depth: 0     msgs: 2        e2e%: \n",
		"\n      [ch                       ] depth: 0     be-depth: 0     inflt: 0    def: 0    re-q: 0     timeout: 0     msgs: 0        e2e%: \n",
		"\n   *P [held                     ] depth: 0     be-depth: 0     inflt: 0    def: 0    re-q: 0     timeout: 0     msgs: 0        e2e%: \n",
		"\n\nProducers:\n   [V2 ",
		"] msgs: 1        topics: txt=1 connected: ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("text /stats lacks %q:\n%s", want, body)
		}
	}
	// The consumer's line sits under its channel.
	lines := strings.Split(body, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "      [ch ") })
	if i < 0 || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "        [V2 ") || !strings.Contains(lines[i+1], "] state: 3 inflt: 0    rdy: ") {
		t.Errorf("no consumer line under channel ch:\n%s", body)
	}
	if strings.Contains(httpRequest(t, "GET", base+"/stats?include_clients=false", nil).body, "[V2 ") {
		t.Errorf("include_clients=false still lists clients")
	}
}

func TestHTTPStatsE2E(t *testing.T) {
	n, base := httpStartNSQD(t, func(c *nsqd.Config) { c.E2EProcessingLatencyPercentiles = []float64{0.5, 0.99} })
	httpOK(t, "POST", base+"/topic/create?topic=e2e", nil)
	msgs := httpConsume(t, n.TCPAddr, "e2e", "ch")
	httpOK(t, "POST", base+"/pub?topic=e2e", "x")
	httpNext(t, msgs)
	nsqtest.Eventually(t, 5*time.Second, "a latency sample", func() bool {
		return httpChannelStats(t, base, "e2e", "ch").E2E.Count > 0
	})
	ts := httpTopicStats(t, base, "e2e")
	if len(ts.E2E.Percentiles) != 2 || ts.E2E.Percentiles[1]["quantile"] != 0.99 {
		t.Fatalf("topic e2e = %+v, want quantiles 0.5 and 0.99", ts.E2E)
	}
	body := httpRequest(t, "GET", base+"/stats", nil).body
	i := strings.Index(body, "[e2e            ]")
	if i < 0 {
		t.Fatalf("no topic line:\n%s", body)
	}
	line, _, _ := strings.Cut(body[i:], "\n")
	_, e2e, _ := strings.Cut(line, "e2e%: ")
	parts := strings.Split(e2e, ", ")
	if len(parts) != 2 {
		t.Fatalf("topic e2e%% = %q, want two values", e2e)
	}
	for _, p := range parts {
		num := strings.TrimRight(p, "nsmu")
		unit := p[len(num):]
		if !slices.Contains([]string{"ns", "us", "ms", "s"}, unit) || strings.Count(num, ".") != 1 || len(num)-strings.Index(num, ".") != 2 {
			t.Errorf("e2e value %q, want one decimal and a unit", p)
		}
	}
}

func TestHTTPInfo(t *testing.T) {
	n, base := httpStartNSQD(t, func(c *nsqd.Config) { c.TopologyZone = "z1" })
	m := httpGetJSON(t, base+"/info")
	want := []string{"broadcast_address", "hostname", "http_port", "max_deflate_level", "max_heartbeat_interval",
		"max_output_buffer_size", "max_output_buffer_timeout", "start_time", "tcp_port", "topology_region", "topology_zone", "version"}
	if got := httpKeys(m); !slices.Equal(got, want) {
		t.Fatalf("/info fields = %v, want %v", got, want)
	}
	host, _ := os.Hostname()
	_, httpPort, _ := net.SplitHostPort(n.HTTPAddr)
	_, tcpPort, _ := net.SplitHostPort(n.TCPAddr)
	checks := []struct {
		field string
		want  any
	}{
		{"version", "1.3.0"},
		{"broadcast_address", "127.0.0.1"},
		{"hostname", host},
		{"http_port", httpPort},
		{"tcp_port", tcpPort},
		{"max_heartbeat_interval", float64(60 * time.Second)}, // nanoseconds
		{"max_output_buffer_timeout", float64(30 * time.Second)},
		{"max_output_buffer_size", 65536.0},
		{"max_deflate_level", 6.0},
		{"topology_zone", "z1"},
		{"topology_region", ""},
	}
	for _, c := range checks {
		got := m[c.field]
		if f, ok := got.(float64); ok {
			if s, ok := c.want.(string); ok {
				got = fmt.Sprint(int64(f))
				c.want = s
			}
		}
		if got != c.want {
			t.Errorf("/info %s = %v, want %v", c.field, got, c.want)
		}
	}
	if st := int64(m["start_time"].(float64)); time.Since(time.Unix(st, 0)) > time.Minute {
		t.Errorf("start_time = %d, want about now", st)
	}
}

func TestHTTPInfoUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tcp.sock")
	_, base := httpStartNSQD(t, func(c *nsqd.Config) { c.TCPAddress = sock })
	if got := httpGetJSON(t, base+"/info")["tcp_port"]; got != -1.0 {
		t.Errorf("/info tcp_port with a unix socket = %v, want -1", got)
	}
}

func TestHTTPPingUnhealthy(t *testing.T) {
	n, base := httpStartNSQD(t, nil)
	n.Server.SetHealth("NOK - disk full")
	r := httpRequest(t, "GET", base+"/ping", nil)
	if r.status != 500 || r.body != "NOK - disk full" || r.header.Get("Content-Type") != ctText {
		t.Errorf("/ping = %d %q %q, want 500 %q text", r.status, r.body, r.header.Get("Content-Type"), "NOK - disk full")
	}
	if h := httpGetJSON(t, base+"/stats?format=json")["health"]; h != "NOK - disk full" {
		t.Errorf("/stats health = %v", h)
	}
}

func TestHTTPPanic(t *testing.T) {
	n, _ := httpStartNSQD(t, nil)
	srv := httptest.NewServer(n.Server.HTTPHandlerWith("GET /boom", func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	defer srv.Close()
	r := httpRequest(t, "GET", srv.URL+"/boom", nil)
	if r.status != 500 || r.body != httpErr("INTERNAL_ERROR") || r.header.Get("X-NSQ-Content-Type") != "nsq; version=1.0" {
		t.Errorf("panicking handler: %d %q %v, want 500 INTERNAL_ERROR", r.status, r.body, r.header)
	}
	if r := httpRequest(t, "GET", srv.URL+"/ping", nil); r.status != 200 {
		t.Errorf("after a panic /ping = %d", r.status)
	}
}

// writeCert writes a self-signed certificate and key for 127.0.0.1.
func httpWriteCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestHTTPTLSRequired(t *testing.T) {
	cert, key := httpWriteCert(t)
	httpsAddr := httpFreeAddr(t)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	tests := []struct {
		mode   int
		status int
		body   string
	}{
		{nsqd.TLSRequired, 403, `{"message": "TLS_REQUIRED", "https_port": ` + httpsPort + `}`},
		{nsqd.TLSRequiredExceptHTTP, 200, "OK"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.mode), func(t *testing.T) {
			n, base := httpStartNSQD(t, func(c *nsqd.Config) {
				c.TLSCert, c.TLSKey, c.TLSRequired = cert, key, tt.mode
				c.HTTPSAddress = httpsAddr
			})
			r := httpRequest(t, "GET", base+"/ping", nil)
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("/ping = %d %q, want %d %q", r.status, r.body, tt.status, tt.body)
			}
			if r.header.Get("X-NSQ-Content-Type") == "" {
				t.Errorf("no X-NSQ-Content-Type")
			}

			// The HTTPS listener serves the whole API in both modes.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			}}
			defer client.CloseIdleConnections()
			resp, err := client.Post("https://"+n.HTTPSAddr().String()+"/pub?topic=secure", "", strings.NewReader("m"))
			if err != nil {
				t.Fatalf("HTTPS /pub: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "OK" || resp.Header.Get("X-NSQ-Content-Type") != "nsq; version=1.0" {
				t.Errorf("HTTPS /pub = %d %q %v, want 200 OK", resp.StatusCode, b, resp.Header)
			}
		})
	}
}

// TestHTTPAcceptV1 checks the legacy negotiation header changes nothing and
// that a client doing what go-nsq's API helper does (send the header, then
// decode the bare JSON because X-NSQ-Content-Type is present) gets the
// data.
func TestHTTPAcceptV1(t *testing.T) {
	_, base := httpStartNSQD(t, nil)
	httpOK(t, "POST", base+"/topic/create?topic=neg", nil)
	for _, path := range []string{"/info", "/stats?format=json&include_mem=false", "/stats?include_mem=false", "/config/msg_timeout", "/nope"} {
		plain := httpRequest(t, "GET", base+path, nil)
		v1 := httpRequest(t, "GET", base+path, nil, "Accept", "application/vnd.nsq; version=1.0")
		if plain.status != v1.status || plain.header.Get("Content-Type") != v1.header.Get("Content-Type") ||
			plain.header.Get("X-NSQ-Content-Type") != v1.header.Get("X-NSQ-Content-Type") {
			t.Errorf("%s: plain %d %v, v1 %d %v", path, plain.status, plain.header, v1.status, v1.header)
		}
		if !strings.HasPrefix(path, "/stats?include") && plain.body != v1.body { // text has uptime
			t.Errorf("%s: plain body %q, v1 body %q", path, plain.body, v1.body)
		}
	}
	r := httpRequest(t, "GET", base+"/stats?format=json", nil, "Accept", "application/vnd.nsq; version=1.0")
	if r.header.Get("X-NSQ-Content-Type") != "nsq; version=1.0" {
		t.Fatal("no X-NSQ-Content-Type: go-nsq would look for a status_code/data wrapper")
	}
	var doc struct {
		Version string `json:"version"`
		Topics  []struct {
			Name string `json:"topic_name"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil || doc.Version != "1.3.0" || len(doc.Topics) != 1 || doc.Topics[0].Name != "neg" {
		t.Errorf("decoded %+v, %v; want version 1.3.0 and topic neg", doc, err)
	}
}

// freeAddr returns a loopback address nothing listens on.
func httpFreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTPConfig(t *testing.T) {
	n, base := httpStartNSQD(t, nil)
	put := func(opt, body string) httpResponse {
		t.Helper()
		return httpRequest(t, "PUT", base+"/config/"+opt, body)
	}

	if r := httpRequest(t, "GET", base+"/config/nsqlookupd_tcp_addresses", nil); r.status != 200 || r.body != "[]" {
		t.Fatalf("GET nsqlookupd_tcp_addresses = %d %q, want []", r.status, r.body)
	}
	addrs := []string{httpFreeAddr(t), httpFreeAddr(t)}
	js, _ := json.Marshal(addrs)
	if r := put("nsqlookupd_tcp_addresses", string(js)); r.status != 200 || r.body != string(js) || r.header.Get("Content-Type") != ctJSON {
		t.Fatalf("PUT nsqlookupd_tcp_addresses = %d %q, want 200 %s", r.status, r.body, js)
	}
	if got := n.Server.LookupdAddrs(); !slices.Equal(got, addrs) {
		t.Fatalf("LookupdAddrs() = %q after PUT, want %q", got, addrs)
	}
	if r := httpRequest(t, "GET", base+"/config/nsqlookupd_tcp_addresses", nil); r.body != string(js) {
		t.Fatalf("GET after PUT = %q, want %s", r.body, js)
	}
	if r := put("nsqlookupd_tcp_addresses", "[]"); r.status != 200 || r.body != "[]" {
		t.Fatalf("PUT [] = %d %q", r.status, r.body)
	}
	if got := n.Server.LookupdAddrs(); len(got) != 0 {
		t.Fatalf("LookupdAddrs() = %q after PUT [], want none", got)
	}

	for _, tt := range []struct{ body, want string }{
		{"fatal", "5"}, {"DEBUG", "1"}, {"warn", "3"}, {"Error", "4"}, {"info", "2"},
	} {
		if r := put("log_level", tt.body); r.status != 200 || r.body != tt.want {
			t.Errorf("PUT log_level %q = %d %q, want 200 %s", tt.body, r.status, r.body, tt.want)
		}
		if r := httpRequest(t, "GET", base+"/config/log_level", nil); r.body != tt.want {
			t.Errorf("GET log_level after %q = %q, want %s", tt.body, r.body, tt.want)
		}
	}

	// Every option NSQ 1.3 has, by its config name.
	values := map[string]string{
		"msg_timeout":                        "60000000000",
		"max_req_timeout":                    "3600000000000",
		"mem_queue_size":                     "10000",
		"max_msg_size":                       "100",
		"max_body_size":                      "1000",
		"e2e_processing_latency_percentiles": "[]",
		"auth_http_addresses":                "[]",
		"snappy":                             "true",
		"tls_required":                       "0",
		"broadcast_address":                  `"127.0.0.1"`,
		"statsd_prefix":                      `"nsq.%s"`,
		"id":                                 fmt.Sprint(n.Config.NodeID),
	}
	for _, opt := range []string{"id", "log_level", "log_prefix", "tcp_address", "http_address", "https_address",
		"broadcast_address", "broadcast_tcp_port", "broadcast_http_port", "nsqlookupd_tcp_addresses",
		"auth_http_addresses", "http_client_connect_timeout", "http_client_request_timeout", "data_path",
		"mem_queue_size", "max_bytes_per_file", "sync_every", "sync_timeout", "queue_scan_selection_count",
		"queue_scan_worker_pool_max", "msg_timeout", "max_msg_timeout", "max_msg_size", "max_body_size",
		"max_req_timeout", "max_heartbeat_interval", "max_rdy_count", "max_output_buffer_size",
		"max_output_buffer_timeout", "min_output_buffer_timeout", "output_buffer_timeout",
		"max_channel_consumers", "statsd_address", "statsd_prefix", "statsd_interval", "statsd_mem_stats",
		"statsd_udp_packet_size", "statsd_exclude_ephemeral", "e2e_processing_latency_window_time",
		"e2e_processing_latency_percentiles", "tls_cert", "tls_key", "tls_client_auth_policy",
		"tls_root_ca_file", "tls_required", "tls_min_version", "deflate", "max_deflate_level", "snappy"} {
		r := httpRequest(t, "GET", base+"/config/"+opt, nil)
		if r.status != 200 || !json.Valid([]byte(r.body)) {
			t.Errorf("GET /config/%s = %d %q, want 200 and a JSON value", opt, r.status, r.body)
			continue
		}
		if want, ok := values[opt]; ok && r.body != want {
			t.Errorf("GET /config/%s = %s, want %s", opt, r.body, want)
		}
	}
}

// BenchmarkHTTPPub posts 200-byte messages to /pub, one at a time over one
// keep-alive connection. Allocations include the client's.
func BenchmarkHTTPPub(b *testing.B) {
	n := nsqtest.StartNSQD(b, nil)
	url := "http://" + n.HTTPAddr + "/pub?topic=bench"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	msg := bytes.Repeat([]byte("x"), 200)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(msg))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkHTTPPubParallel is BenchmarkHTTPPub over GOMAXPROCS keep-alive
// connections: its ns/op is the server's throughput.
func BenchmarkHTTPPubParallel(b *testing.B) {
	n := nsqtest.StartNSQD(b, nil)
	url := "http://" + n.HTTPAddr + "/pub?topic=bench"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	msg := bytes.Repeat([]byte("x"), 200)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var once sync.Once
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(msg))
			if err != nil {
				once.Do(func() { b.Error(err) })
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
