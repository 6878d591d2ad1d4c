package nsqlookupd

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const replyToken = "<reply>" // stands for the server's IDENTIFY reply in want

var okBody = peerBody("b1", 4151)

// v1Cases are whole conversations: everything the peer sends (after which
// it half-closes) and every response the server sends before it closes.
// FuzzV1 seeds from them too.
var v1Cases = []struct {
	name  string
	input string
	want  []string
}{
	{"magic only", "  V1", nil},
	{"bad magic", "  V2PING\n", []string{"E_BAD_PROTOCOL"}},
	{"http on the tcp port", "GET / HTTP/1.1\r\n\r\n", []string{"E_BAD_PROTOCOL"}},
	{"short magic", "  V", nil},

	{"ping", "  V1PING\n", []string{"OK"}},
	{"ping crlf and spaces", "  V1  PING \r\nPING\r\n", []string{"OK", "OK"}},
	{"ping with params", "  V1PING x y\n", []string{"OK"}},
	{"unterminated line", "  V1PING", nil},
	{"empty line", "  V1\n", []string{"E_INVALID invalid command "}},
	{"unknown command", "  V1PING\nFOO bar\nPING\n", []string{"OK", "E_INVALID invalid command FOO"}},
	{"lower case", "  V1ping\n", []string{"E_INVALID invalid command ping"}},
	{"v2 command", "  V1SUB t c\n", []string{"E_INVALID invalid command SUB"}},
	{"line too long", "  V1" + strings.Repeat("A", 2000), []string{"E_INVALID command line longer than 1024 bytes"}},
	{"long line with newline", "  V1PING " + strings.Repeat("x", 1100) + "\n", []string{"E_INVALID command line longer than 1024 bytes"}},

	{"identify", "  V1" + identifyCmd(okBody), []string{replyToken}},
	{"identify ignores params and unknown fields", "  V1IDENTIFY x y\n" +
		sized(int32(len(okBody)+14), okBody[:len(okBody)-1]+`,"extra":[1,2]}`), []string{replyToken}},
	{"identify twice", "  V1" + identifyCmd(okBody) + identifyCmd(okBody) + "PING\n",
		[]string{replyToken, "E_INVALID cannot IDENTIFY again"}},
	{"identify missing broadcast_address", "  V1" + identifyCmd(`{"version":"1.3.0","tcp_port":1,"http_port":2}`),
		[]string{"E_BAD_BODY IDENTIFY missing fields"}},
	{"identify missing tcp_port", "  V1" + identifyCmd(`{"version":"1.3.0","broadcast_address":"b","http_port":2}`),
		[]string{"E_BAD_BODY IDENTIFY missing fields"}},
	{"identify missing http_port", "  V1" + identifyCmd(`{"version":"1.3.0","broadcast_address":"b","tcp_port":1}`),
		[]string{"E_BAD_BODY IDENTIFY missing fields"}},
	{"identify missing version", "  V1" + identifyCmd(`{"broadcast_address":"b","tcp_port":1,"http_port":2}`),
		[]string{"E_BAD_BODY IDENTIFY missing fields"}},
	{"identify null", "  V1" + identifyCmd(`null`), []string{"E_BAD_BODY IDENTIFY missing fields"}},
	{"identify bad json", "  V1" + identifyCmd(`{"version":`), []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
	{"identify wrong type", "  V1" + identifyCmd(`{"version":"1","broadcast_address":"b","tcp_port":"1","http_port":2}`),
		[]string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
	{"identify trailing data", "  V1" + identifyCmd(okBody+" x"), []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
	{"identify empty body", "  V1" + identifyCmd(""), []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
	{"identify negative size", "  V1IDENTIFY\n" + sized(-1, ""), []string{"E_BAD_BODY IDENTIFY invalid body size -1"}},
	{"identify min int32 size", "  V1IDENTIFY\n" + sized(-1<<31, ""), []string{"E_BAD_BODY IDENTIFY invalid body size -2147483648"}},
	{"identify huge size", "  V1IDENTIFY\n" + sized(1<<30, "{}"), []string{"E_BAD_BODY IDENTIFY invalid body size 1073741824"}},
	{"identify size one over the cap", "  V1IDENTIFY\n" + sized(64<<10+1, "{}"), []string{"E_BAD_BODY IDENTIFY invalid body size 65537"}},
	{"identify body at the cap", "  V1" + identifyCmd(okBody+strings.Repeat(" ", 64<<10-len(okBody))), []string{replyToken}},
	{"identify short size", "  V1IDENTIFY\n\x00\x00", []string{"E_BAD_BODY IDENTIFY failed to read body size"}},
	{"identify short body", "  V1IDENTIFY\n" + sized(100, "{}"), []string{"E_BAD_BODY IDENTIFY failed to read body"}},

	{"register before identify", "  V1REGISTER t\n", []string{"E_INVALID client must IDENTIFY"}},
	{"unregister before identify", "  V1UNREGISTER t c\n", []string{"E_INVALID client must IDENTIFY"}},
	{"register", "  V1" + identifyCmd(okBody) + "REGISTER t\nREGISTER t c\nREGISTER t c\nREGISTER t#ephemeral c#ephemeral extra\n",
		[]string{replyToken, "OK", "OK", "OK", "OK"}},
	{"register no params", "  V1" + identifyCmd(okBody) + "REGISTER\n",
		[]string{replyToken, "E_INVALID REGISTER insufficient number of params"}},
	{"register trailing space only", "  V1" + identifyCmd(okBody) + "REGISTER \n",
		[]string{replyToken, "E_INVALID REGISTER insufficient number of params"}},
	{"register bad topic", "  V1" + identifyCmd(okBody) + "REGISTER a*b\n",
		[]string{replyToken, "E_BAD_TOPIC REGISTER topic name 'a*b' is not valid"}},
	{"register empty topic", "  V1" + identifyCmd(okBody) + "REGISTER  c\n",
		[]string{replyToken, "E_BAD_TOPIC REGISTER topic name '' is not valid"}},
	{"register topic too long", "  V1" + identifyCmd(okBody) + "REGISTER " + strings.Repeat("t", 65) + "\n",
		[]string{replyToken, "E_BAD_TOPIC REGISTER topic name '" + strings.Repeat("t", 65) + "' is not valid"}},
	{"register longest names", "  V1" + identifyCmd(okBody) + "REGISTER " + strings.Repeat("t", 64) + " " + strings.Repeat("c", 64) + "\n",
		[]string{replyToken, "OK"}},
	{"register bad channel", "  V1" + identifyCmd(okBody) + "REGISTER t c!\n",
		[]string{replyToken, "E_BAD_CHANNEL REGISTER channel name 'c!' is not valid"}},
	{"register bad ephemeral", "  V1" + identifyCmd(okBody) + "REGISTER #ephemeral\n",
		[]string{replyToken, "E_BAD_TOPIC REGISTER topic name '#ephemeral' is not valid"}},
	{"unregister", "  V1" + identifyCmd(okBody) + "REGISTER t c\nUNREGISTER t c\nUNREGISTER t\nUNREGISTER never seen\n",
		[]string{replyToken, "OK", "OK", "OK", "OK"}},
	{"unregister no params", "  V1" + identifyCmd(okBody) + "UNREGISTER\n",
		[]string{replyToken, "E_INVALID UNREGISTER insufficient number of params"}},
	{"unregister bad topic", "  V1" + identifyCmd(okBody) + "UNREGISTER t/x\n",
		[]string{replyToken, "E_BAD_TOPIC UNREGISTER topic name 't/x' is not valid"}},
	{"unregister bad channel", "  V1" + identifyCmd(okBody) + "UNREGISTER t ../c\n",
		[]string{replyToken, "E_BAD_CHANNEL UNREGISTER channel name '../c' is not valid"}},
	{"error stops the conversation", "  V1" + identifyCmd(okBody) + "REGISTER t!\nREGISTER t\nPING\n",
		[]string{replyToken, "E_BAD_TOPIC REGISTER topic name 't!' is not valid"}},
}

func TestV1Conversations(t *testing.T) {
	s := startServer(t, nil, nil)
	reply := wantReply(t, s)
	for _, tc := range v1Cases {
		t.Run(tc.name, func(t *testing.T) {
			var want strings.Builder
			for _, w := range tc.want {
				if w == replyToken {
					w = reply
				}
				want.WriteString(resp(w))
			}
			if got := dial(t, s).conversation(tc.input); got != want.String() {
				t.Errorf("conversation(%q)\n got %q\nwant %q", tc.input, got, want.String())
			}
		})
	}
	// None of it may leave a producer behind.
	waitFor(t, "registrations of closed connections to go", func() bool {
		return get(t, s, "/debug") == "{}"
	})
}

func TestV1ErrorClosesConnection(t *testing.T) {
	s := startServer(t, nil, nil)
	c := identified(t, s, "b1", 4151)
	c.roundTrip("REGISTER t c\n", "OK")
	c.roundTrip("REGISTER bad!\n", "E_BAD_TOPIC REGISTER topic name 'bad!' is not valid")
	c.expectClosed()
	waitFor(t, "producer removed after fatal error", func() bool {
		return get(t, s, "/lookup?topic=t") == `{"channels":["c"],"producers":[]}`
	})
}

// TestV1Timeouts checks the deadlines of silent and slow peers: each gets an
// error saying why, then EOF, and the registry keeps everyone else.
func TestV1Timeouts(t *testing.T) {
	cfg := testConfig(t)
	cfg.HandshakeTimeout = 100 * time.Millisecond
	cfg.IdleTimeout = 300 * time.Millisecond
	s := startServer(t, cfg, nil)

	// A well-behaved peer that keeps pinging, as nsqd does, while the
	// others time out.
	good := identified(t, s, "good", 4151)
	good.roundTrip("REGISTER keep ch\n", "OK")
	stop, pingErr := make(chan struct{}), make(chan error, 1)
	go func() { // stopped by close(stop) below
		tick := time.NewTicker(cfg.IdleTimeout / 5)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pingErr <- nil
				return
			case <-tick.C:
			}
			if _, err := good.conn.Write([]byte("PING\n")); err != nil {
				pingErr <- err
				return
			}
			if got, err := good.read(); err != nil || got != "OK" {
				pingErr <- fmt.Errorf("PING: got %q, %v", got, err)
				return
			}
		}
	}()

	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"no magic", "", "E_BAD_PROTOCOL no protocol magic within 100ms"},
		{"partial magic", "  V", "E_BAD_PROTOCOL no protocol magic within 100ms"},
		{"silent after magic", "  V1", "E_INVALID no command within 300ms"},
		{"partial line", "  V1REGIS", "E_INVALID no command within 300ms"},
		{"silent after identify", "  V1" + identifyCmd(peerBody("slow", 1)), resp(wantReply(t, s)) + "E_INVALID no command within 300ms"},
		{"partial identify size", "  V1IDENTIFY\n\x00", "E_BAD_BODY IDENTIFY failed to read body size"},
		{"partial identify body", "  V1IDENTIFY\n" + sized(50, `{"version"`), "E_BAD_BODY IDENTIFY failed to read body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			c.write(tc.input)
			want := tc.want
			if strings.HasPrefix(want, resp(wantReply(t, s))) {
				got, err := c.read()
				if err != nil || got != wantReply(t, s) {
					t.Fatalf("IDENTIFY reply = %q, %v", got, err)
				}
				want = strings.TrimPrefix(want, resp(wantReply(t, s)))
			}
			start := time.Now()
			got, err := c.read()
			if err != nil || got != want {
				t.Fatalf("after %q: got %q, %v; want %q", tc.input, got, err, want)
			}
			if d := time.Since(start); d < 50*time.Millisecond && tc.input != "" {
				t.Errorf("closed after %v, before any deadline", d)
			}
			c.expectClosed()
		})
	}
	close(stop)
	if err := <-pingErr; err != nil {
		t.Fatalf("the well-behaved peer: %v", err)
	}
	want := `{"channels":["ch"],"producers":[` + producerJSON(good.localAddr(), "good", 4151) + `]}`
	if got := get(t, s, "/lookup?topic=keep"); got != want {
		t.Errorf("/lookup?topic=keep = %s, want %s", got, want)
	}
	if got := get(t, s, "/topics"); got != `{"topics":["keep"]}` {
		t.Errorf("/topics = %s", got)
	}
}

func TestV1IdleDeadlineResetByCommands(t *testing.T) {
	cfg := testConfig(t)
	cfg.IdleTimeout = 400 * time.Millisecond
	s := startServer(t, cfg, nil)
	c := identified(t, s, "b1", 4151)
	// Ping for longer than two idle timeouts: each command moves the
	// deadline, so the connection must stay open throughout.
	end := time.Now().Add(2*cfg.IdleTimeout + 100*time.Millisecond)
	for i := 0; time.Now().Before(end); i++ {
		if i > 10000 {
			t.Fatal("too many iterations")
		}
		c.roundTrip("PING\n", "OK")
		time.Sleep(cfg.IdleTimeout / 4) // pacing the peer, not waiting for the server
	}
}

func TestV1RegisterVisibleOverHTTP(t *testing.T) {
	s := startServer(t, nil, nil)
	a := identified(t, s, "a", 4151)
	b := identified(t, s, "b", 4152)
	a.roundTrip("REGISTER t c1\n", "OK")
	b.roundTrip("REGISTER t c2\n", "OK")
	b.roundTrip("REGISTER u\n", "OK")

	if got, want := get(t, s, "/topics"), `{"topics":["t","u"]}`; got != want {
		t.Errorf("/topics = %s, want %s", got, want)
	}
	if got, want := get(t, s, "/channels?topic=t"), `{"channels":["c1","c2"]}`; got != want {
		t.Errorf("/channels = %s, want %s", got, want)
	}
	pa, pb := producerJSON(a.localAddr(), "a", 4151), producerJSON(b.localAddr(), "b", 4152)
	if a.localAddr() > b.localAddr() {
		pa, pb = pb, pa
	}
	if got, want := get(t, s, "/lookup?topic=t"), `{"channels":["c1","c2"],"producers":`+joinJSON(pa, pb)+`}`; got != want {
		t.Errorf("/lookup = %s\nwant %s", got, want)
	}

	// UNREGISTER of a channel leaves the topic; of a topic, all of that
	// peer's channels. The registrations themselves stay listed.
	a.roundTrip("UNREGISTER t c1\n", "OK")
	if got := get(t, s, "/debug"); strings.Contains(got, "channel:t:c1") {
		t.Errorf("/debug still lists a producer of t/c1: %s", got)
	}
	if got, want := get(t, s, "/lookup?topic=t"), `{"channels":["c1","c2"],"producers":`+joinJSON(pa, pb)+`}`; got != want {
		t.Errorf("/lookup after UNREGISTER t c1 = %s\nwant %s", got, want)
	}
	b.roundTrip("UNREGISTER t\n", "OK")
	if got := get(t, s, "/debug"); strings.Contains(got, "channel:t:c2") {
		t.Errorf("/debug still lists a producer of t/c2: %s", got)
	}
	if got, want := get(t, s, "/lookup?topic=t"), `{"channels":["c1","c2"],"producers":[`+producerJSON(a.localAddr(), "a", 4151)+`]}`; got != want {
		t.Errorf("/lookup after UNREGISTER t = %s\nwant %s", got, want)
	}
}

func TestV1DisconnectRemovesRegistrations(t *testing.T) {
	s := startServer(t, nil, nil)
	keep := identified(t, s, "keep", 4151)
	keep.roundTrip("REGISTER t\n", "OK")
	gone := identified(t, s, "gone", 4152)
	gone.roundTrip("REGISTER t c\n", "OK")
	gone.roundTrip("REGISTER u\n", "OK")
	gone.roundTrip("REGISTER e#ephemeral c#ephemeral\n", "OK")
	gone.conn.Close()

	want := `{"channels":["c"],"producers":[` + producerJSON(keep.localAddr(), "keep", 4151) + `]}`
	waitFor(t, "the closed peer's registrations to go", func() bool {
		return get(t, s, "/lookup?topic=t") == want
	})
	// Durable registrations stay without producers (as in NSQ); the
	// ephemeral ones are dropped.
	if got, want := get(t, s, "/topics"), `{"topics":["t","u"]}`; got != want {
		t.Errorf("/topics = %s, want %s", got, want)
	}
	if got, want := get(t, s, "/lookup?topic=u"), `{"channels":[],"producers":[]}`; got != want {
		t.Errorf("/lookup?topic=u = %s, want %s", got, want)
	}
	if got, want := get(t, s, "/channels?topic=e%23ephemeral"), `{"channels":[]}`; got != want {
		t.Errorf("/channels of the ephemeral topic = %s, want %s", got, want)
	}
	if got := get(t, s, "/nodes"); strings.Contains(got, `"gone"`) {
		t.Errorf("/nodes still lists the closed peer: %s", got)
	}
}

func TestV1EphemeralUnregister(t *testing.T) {
	s := startServer(t, nil, nil)
	a := identified(t, s, "a", 4151)
	b := identified(t, s, "b", 4152)
	a.roundTrip("REGISTER t#ephemeral c#ephemeral\n", "OK")
	b.roundTrip("REGISTER t#ephemeral c#ephemeral\n", "OK")
	a.roundTrip("REGISTER t#ephemeral durable\n", "OK")

	steps := []struct {
		peer         *v1Client
		cmd          string
		wantTopics   string
		wantChannels string
	}{
		{a, "UNREGISTER t#ephemeral c#ephemeral\n", `{"topics":["t#ephemeral"]}`, `{"channels":["c#ephemeral","durable"]}`},
		{b, "UNREGISTER t#ephemeral c#ephemeral\n", `{"topics":["t#ephemeral"]}`, `{"channels":["durable"]}`},
		{b, "UNREGISTER t#ephemeral\n", `{"topics":["t#ephemeral"]}`, `{"channels":["durable"]}`},
		{a, "UNREGISTER t#ephemeral\n", `{"topics":[]}`, `{"channels":["durable"]}`},
	}
	for i, st := range steps {
		st.peer.roundTrip(st.cmd, "OK")
		if got := get(t, s, "/topics"); got != st.wantTopics {
			t.Errorf("step %d %q: /topics = %s, want %s", i, st.cmd, got, st.wantTopics)
		}
		if got := get(t, s, "/channels?topic=t%23ephemeral"); got != st.wantChannels {
			t.Errorf("step %d %q: /channels = %s, want %s", i, st.cmd, got, st.wantChannels)
		}
	}
}

// TestV1Ping checks that PING keeps a producer active and that a peer that
// stops pinging is hidden after the inactive producer timeout.
func TestV1Ping(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t)
	s := startServer(t, cfg, clock)
	c := identified(t, s, "b1", 4151)
	c.roundTrip("REGISTER t\n", "OK")
	lookup := func() string { return get(t, s, "/lookup?topic=t") }
	visible := `{"channels":[],"producers":[` + producerJSON(c.localAddr(), "b1", 4151) + `]}`
	hidden := `{"channels":[],"producers":[]}`

	steps := []struct {
		advance time.Duration
		ping    bool
		want    string
	}{
		{0, false, visible},
		{cfg.InactiveProducerTimeout, false, visible}, // exactly the timeout: still active
		{time.Nanosecond, false, hidden},
		{0, true, visible},
		{cfg.InactiveProducerTimeout - time.Second, false, visible},
		{0, true, visible},
		{cfg.InactiveProducerTimeout - time.Second, false, visible}, // PING moved the window
		{2 * time.Second, false, hidden},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if st.ping {
			c.roundTrip("PING\n", "OK")
		}
		if got := lookup(); got != st.want {
			t.Errorf("step %d (advance %v, ping %v): /lookup = %s, want %s", i, st.advance, st.ping, got, st.want)
		}
	}
}
