package nsqadmin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// TestHTTPClientAuthSecret: against an nsqd whose /stats needs a secret
// (--auth-http-protect-stats), nsqadmin reads it with
// --http-client-auth-secret and reports the node as failing without.
func TestHTTPClientAuthSecret(t *testing.T) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("secret") != "s3cret" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ttl":3600,"identity":"admin","authorizations":[{"topic":".*","channels":[".*"],"permissions":["subscribe","publish"]}]}`))
	}))
	t.Cleanup(auth.Close)
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.AuthHTTPAddresses = []string{strings.TrimPrefix(auth.URL, "http://")}
		c.AuthHTTPProtectStats = true
	})
	if _, err := n.Topic("guarded"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret    string
		wantTopic bool
	}{{"s3cret", true}, {"", false}} {
		cfg := testConfig(t)
		cfg.NSQDHTTPAddresses = []string{n.HTTPAddr}
		cfg.HTTPClientAuthSecret = tc.secret
		_, base := startAdmin(t, cfg)
		_, body := request(t, "GET", strings.TrimSuffix(base, "/")+"/api/topics", nil, nil, nil)
		var got struct {
			Topics  []string `json:"topics"`
			Message string   `json:"message"`
		}
		json.Unmarshal(body, &got)
		has := len(got.Topics) == 1 && got.Topics[0] == "guarded"
		if has != tc.wantTopic {
			t.Errorf("secret %q: /api/topics = %s, want the topic listed: %v", tc.secret, body, tc.wantTopic)
		}
	}
}
