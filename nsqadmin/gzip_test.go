package nsqadmin

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGzip: pages, API answers and assets are gzipped when the client
// accepts it and plain otherwise; /metrics keeps its own negotiation.
func TestGzip(t *testing.T) {
	c := startCluster(t, 1)
	_, url := c.admin(t, nil)
	get := func(path string, gz bool) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", strings.TrimSuffix(url, "/")+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		} else {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatalf("GET %s: gzip: %v", path, err)
			}
			r = zr
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp, b
	}
	for _, path := range []string{"/", "/api/nodes", "/static/" + firstAsset(t)} {
		plainResp, plain := get(path, false)
		gzResp, unzipped := get(path, true)
		if plainResp.StatusCode != 200 || gzResp.StatusCode != 200 {
			t.Fatalf("GET %s: status %d / %d", path, plainResp.StatusCode, gzResp.StatusCode)
		}
		if e := plainResp.Header.Get("Content-Encoding"); e != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", path, e)
		}
		if len(plain) > 1400 && gzResp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s (%d bytes) with Accept-Encoding gzip: not gzipped", path, len(plain))
		}
		if path == "/api/nodes" {
			if !json.Valid(unzipped) {
				t.Errorf("GET %s gzipped: not JSON after gunzip: %.100q", path, unzipped)
			}
		} else if len(unzipped) != len(plain) {
			t.Errorf("GET %s: %d bytes gunzipped, %d plain", path, len(unzipped), len(plain))
		}
	}
	resp, body := get("/metrics", true)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics gzipped: status %d, body %.100q", resp.StatusCode, body)
	}
}

// firstAsset returns the name of a sizeable embedded JS asset.
func firstAsset(t *testing.T) string {
	t.Helper()
	entries, err := staticFS.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	best, size := "", int64(0)
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && !e.IsDir() && info.Size() > size {
			best, size = e.Name(), info.Size()
		}
	}
	if best == "" {
		t.Fatal("no embedded assets")
	}
	return best
}
