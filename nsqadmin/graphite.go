package nsqadmin

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// apiGraphite is GET /api/graphite?metric=rate&target=…: the target's
// per-second rate over the statsd interval before last, as NSQ computes
// it for its sparklines.
func (s *Server) apiGraphite(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("metric") != "rate" {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_METRIC")
		return
	}
	target := q.Get("target")
	if target == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_TARGET")
		return
	}
	if s.graphite == nil {
		s.log.Error("graphite request without --graphite-url")
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
		return
	}
	secs := int64(s.cfg.StatsdInterval / time.Second)
	params := url.Values{
		"from":   {fmt.Sprintf("-%dsec", 2*secs)},
		"until":  {fmt.Sprintf("-%dsec", secs)},
		"format": {"json"},
		"target": {target},
	}
	u := strings.TrimRight(s.cfg.GraphiteURL, "/") + "/render?" + params.Encode()
	var resp []struct {
		Target     string       `json:"target"`
		DataPoints [][]*float64 `json:"datapoints"`
	}
	if err := s.ci.GetJSON(r.Context(), u, &resp); err != nil {
		s.log.Error("graphite request failed", "url", u, "err", err)
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
		return
	}
	rate := "N/A"
	if len(resp) > 0 && len(resp[0].DataPoints) > 0 && len(resp[0].DataPoints[0]) > 0 {
		if v := resp[0].DataPoints[0][0]; v != nil && *v >= 0 && secs > 0 {
			rate = fmt.Sprintf("%.2f", *v/float64(secs))
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Rate string `json:"rate"`
	}{rate})
}

// graphiteProxy forwards /render to --graphite-url (with the credentials
// in its user info) when --proxy-graphite is set, so browsers need no
// direct access to Graphite.
func (s *Server) graphiteProxy() http.Handler {
	target := s.graphite
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimRight(target.Path, "/") + "/render"
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
			if target.User != nil {
				pass, _ := target.User.Password()
				pr.Out.SetBasicAuth(target.User.Username(), pass)
			}
		},
		Transport: s.ci.Transport(),
		ErrorLog:  nil,
	}
}
