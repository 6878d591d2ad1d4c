package nsqadmin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the UI's pages; each is templates/<name>.html rendered in
// templates/layout.html.
var pageNames = []string{"topics", "topic", "channel", "nodes", "node", "lookup", "counter", "error"}

// page is what every page template gets; Data is the page's own view.
type page struct {
	Name      string // the page, for the navigation
	Title     string
	Base      string
	Version   string
	Mode      string // "lookupd" or "nsqd"
	Sources   []string
	IsAdmin   bool
	ReadOnly  bool // admin users are configured and this request is not one
	User      string
	ACLHeader string
	Warning   string // partial failures of the page's queries
	Error     string // the page's queries all failed
	Chart     *chartSpec
	RefreshMS int64
	ChartMS   int64
	Data      any
}

// chartSpec tells the browser which JSON endpoint feeds the page's live
// charts and how to read it (static/charts.js).
type chartSpec struct {
	Kind   string // cluster, topic, channel or node
	Source string // URL of the JSON endpoint
	Key    string // identifies the history kept in the browser
}

func (s *Server) parsePages() (map[string]*template.Template, string, error) {
	funcs := template.FuncMap{
		"num":         formatNum,
		"rate":        formatRate,
		"ns":          formatNanos,
		"quantile":    formatQuantile,
		"dur":         formatDuration,
		"pct":         func(n int32) string { return strconv.Itoa(int(n)) + "%" },
		"ephemeral":   wire.IsEphemeral,
		"topicPath":   func(t string) string { return s.base + "/topics/" + url.PathEscape(t) },
		"channelPath": func(t, c string) string { return s.base + "/topics/" + url.PathEscape(t) + "/" + url.PathEscape(c) },
		"nodePath":    func(n string) string { return s.base + "/nodes/" + url.PathEscape(n) },
		"apiTopic":    func(t string) string { return s.base + "/api/topics/" + url.PathEscape(t) },
		"apiChannel":  func(t, c string) string { return s.base + "/api/topics/" + url.PathEscape(t) + "/" + url.PathEscape(c) },
		"apiNode":     func(n string) string { return s.base + "/api/nodes/" + url.PathEscape(n) },
		"path":        func(p string) string { return s.base + p },
		"static":      func(name string) string { return s.base + "/static/" + name + "?v=" + s.assetTag },
		"quantiles":   quantilesOf,
		"at":          percentileAt,
		"jsonBody":    jsonBody,
		"dict2":       func(e *clusterinfo.E2E, q []float64) e2eArgs { return e2eArgs{e, q} },
	}
	tag, err := assetTag()
	if err != nil {
		return nil, "", err
	}
	s.assetTag = tag
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, "", err
		}
		pages[name] = t
	}
	return pages, tag, nil
}

// assetTag is a hash of the embedded assets, appended to their URLs so a
// browser never runs a stale script against a new server.
func assetTag() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

// newPage fills in what every page shows.
func (s *Server) newPage(r *http.Request, name, title string) *page {
	lookupds, nsqds := s.addrs()
	p := &page{
		Name:      name,
		Title:     title,
		Base:      s.base,
		Version:   version.String("nsqadmin"),
		IsAdmin:   s.isAdmin(r),
		ACLHeader: s.cfg.ACLHTTPHeader,
		RefreshMS: interval(s.cfg.RefreshInterval, 5*time.Second),
		ChartMS:   interval(s.cfg.ChartInterval, 2*time.Second),
	}
	if len(s.cfg.AdminUsers) > 0 {
		p.User = r.Header.Get(s.cfg.ACLHTTPHeader)
		p.ReadOnly = !p.IsAdmin
	}
	if len(lookupds) > 0 {
		p.Mode, p.Sources = "lookupd", lookupds
	} else {
		p.Mode, p.Sources = "nsqd", nsqds
	}
	return p
}

func interval(d, def time.Duration) int64 {
	if d <= 0 {
		d = def
	}
	return d.Milliseconds()
}

// render writes p with its page template, or only its "content" block
// when the browser refreshes the page in place (X-NSQX-Fragment).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, p *page) {
	t := s.pages[p.Name]
	block := "layout"
	if r.Header.Get("X-NSQX-Fragment") != "" {
		block = "content"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, p); err != nil {
		s.log.Error("render page failed", "page", p.Name, "err", err)
		http.Error(w, "internal error rendering page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "X-NSQX-Fragment")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail renders the page's error state: every node it asked failed, or the
// node asked for does not exist.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	status := http.StatusBadGateway
	p.Error = "Could not reach the cluster: " + err.Error()
	if errors.Is(err, errNodeNotFound) {
		status = http.StatusNotFound
		p.Error = "No node is known by that address."
	}
	p.Chart = nil
	p.Data = nil
	p.Name = "error"
	s.render(w, r, status, p)
}

func (s *Server) pageTopics(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "topics", "Topics")
	var warn warnings
	o, err := s.overview(r.Context(), &warn)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	p.Warning = warn.message()
	p.Data = o
	p.Chart = &chartSpec{Kind: "cluster", Source: s.base + "/api/overview", Key: "cluster"}
	s.render(w, r, http.StatusOK, p)
}

// topicView is the topic page.
type topicView struct {
	*clusterinfo.TopicStats
	Rate         *float64
	NodeRates    map[string]*float64 // by node
	ChannelRates map[string]*float64 // by channel
	Lookupd      bool
}

func (s *Server) pageTopic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	p := s.newPage(r, "topic", name)
	var warn warnings
	t, err := s.topic(r.Context(), &warn, name)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := &topicView{TopicStats: t, NodeRates: map[string]*float64{}, ChannelRates: map[string]*float64{}, Lookupd: p.Mode == "lookupd"}
	if len(t.NodeStats) > 0 {
		v.Rate = s.rate("t:"+name, t.MessageCount)
	}
	for _, n := range t.NodeStats {
		v.NodeRates[n.Node] = s.rate("t:"+name+"@"+n.Node, n.MessageCount)
	}
	for _, c := range t.Channels {
		v.ChannelRates[c.ChannelName] = s.rate("c:"+name+"/"+c.ChannelName, c.MessageCount)
	}
	p.Warning = warn.message()
	p.Data = v
	p.Chart = &chartSpec{Kind: "topic", Source: s.base + "/api/topics/" + url.PathEscape(name), Key: "topic:" + name}
	s.render(w, r, http.StatusOK, p)
}

// channelView is the channel page.
type channelView struct {
	*clusterinfo.ChannelStats
	Rate      *float64
	NodeRates map[string]*float64
}

func (s *Server) pageChannel(w http.ResponseWriter, r *http.Request) {
	topic, name := r.PathValue("topic"), r.PathValue("channel")
	p := s.newPage(r, "channel", topic+" / "+name)
	var warn warnings
	c, err := s.channel(r.Context(), &warn, topic, name)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := &channelView{ChannelStats: c, NodeRates: map[string]*float64{}}
	if len(c.NodeStats) > 0 {
		v.Rate = s.rate("c:"+topic+"/"+name, c.MessageCount)
	}
	for _, n := range c.NodeStats {
		v.NodeRates[n.Node] = s.rate("c:"+topic+"/"+name+"@"+n.Node, n.MessageCount)
	}
	p.Warning = warn.message()
	p.Data = v
	p.Chart = &chartSpec{Kind: "channel", Source: s.base + "/api/topics/" + url.PathEscape(topic) + "/" + url.PathEscape(name), Key: "channel:" + topic + "/" + name}
	s.render(w, r, http.StatusOK, p)
}

// nodesView is the nodes page.
type nodesView struct {
	Nodes    clusterinfo.Producers
	Lookupds int // 0 in nsqd mode
}

func (s *Server) pageNodes(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "nodes", "Nodes")
	var warn warnings
	nodes, err := s.nodes(r.Context(), &warn)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := &nodesView{Nodes: nodes}
	if p.Mode == "lookupd" {
		v.Lookupds = len(p.Sources)
	}
	p.Warning = warn.message()
	p.Data = v
	s.render(w, r, http.StatusOK, p)
}

// nodePageView is the node page.
type nodePageView struct {
	*nodeView
	Producer *clusterinfo.Producer
	Depth    int64
	InFlight int64
	Rate     *float64
}

func (s *Server) pageNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	p := s.newPage(r, "node", name)
	var warn warnings
	n, err := s.node(r.Context(), &warn, name)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := &nodePageView{nodeView: n, Producer: n.producer}
	for _, t := range n.TopicStats {
		v.Depth += t.Depth + t.ChannelDepth()
		v.InFlight += t.InFlightCount()
	}
	v.Rate = s.rate("n:"+name, n.TotalMessages)
	p.Warning = warn.message()
	p.Data = v
	p.Chart = &chartSpec{Kind: "node", Source: s.base + "/api/nodes/" + url.PathEscape(name), Key: "node:" + name}
	s.render(w, r, http.StatusOK, p)
}

// lookupView is the lookup page.
type lookupView struct {
	Inactive []inactiveTopic
}

type inactiveTopic struct {
	Topic    string
	Channels []string
}

func (s *Server) pageLookup(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "lookup", "Lookup")
	var warn warnings
	m, err := s.inactiveTopics(r.Context(), &warn)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := &lookupView{}
	for t, chans := range m {
		v.Inactive = append(v.Inactive, inactiveTopic{t, chans})
	}
	sortInactive(v.Inactive)
	p.Warning = warn.message()
	p.Data = v
	s.render(w, r, http.StatusOK, p)
}

// counterView is the counter page.
type counterView struct {
	Total    int64
	Channels int
}

func (s *Server) pageCounter(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "counter", "Counter")
	var warn warnings
	stats, err := s.counter(r.Context(), &warn)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := &counterView{}
	seen := map[string]bool{}
	for _, c := range stats {
		v.Total += c.MessageCount
		seen[c.TopicName+":"+c.ChannelName] = true
	}
	v.Channels = len(seen)
	p.Warning = warn.message()
	p.Data = v
	s.render(w, r, http.StatusOK, p)
}

// handleStatic serves the embedded assets (or --dev-static-dir).
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("asset")
	if !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound, "NOT_FOUND")
		return
	}
	var b []byte
	var err error
	if s.cfg.DevStaticDir != "" {
		b, err = os.ReadFile(path.Join(s.cfg.DevStaticDir, name))
	} else {
		b, err = staticFS.ReadFile("static/" + name)
	}
	if err != nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND")
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	}
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == s.assetTag && s.cfg.DevStaticDir == "" {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Write(b)
}

// formatNum writes an integer with thousands separators.
func formatNum(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		n = int64(x)
	default:
		return fmt.Sprint(v)
	}
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatRate writes a per-second rate, or a dash while it is unknown.
func formatRate(r *float64) string {
	if r == nil {
		return "–"
	}
	switch v := *r; {
	case v >= 100:
		return formatNum(int64(math.Round(v))) + "/s"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64) + "/s"
	}
}

// formatNanos writes a latency given in nanoseconds.
func formatNanos(ns float64) string {
	switch {
	case ns <= 0:
		return "0"
	case ns < 1e3:
		return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
	case ns < 1e6:
		return strconv.FormatFloat(ns/1e3, 'f', 1, 64) + "µs"
	case ns < 1e9:
		return strconv.FormatFloat(ns/1e6, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(ns/1e9, 'f', 2, 64) + "s"
	}
}

// formatQuantile writes 0.99 as "p99" and 0.999 as "p99.9".
func formatQuantile(q float64) string {
	return "p" + strconv.FormatFloat(q*100, 'f', -1, 64)
}

// formatDuration writes how long a client has been connected.
func formatDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d >= 24*time.Hour {
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%s", days, (d - days*24*time.Hour).String())
	}
	return d.String()
}

// quantilesOf lists the quantiles present in any of the summaries.
func quantilesOf(es ...*clusterinfo.E2E) []float64 {
	var qs []float64
	for _, e := range es {
		if e == nil {
			continue
		}
		for _, p := range e.Percentiles {
			found := false
			for _, q := range qs {
				found = found || q == p.Quantile
			}
			if !found {
				qs = append(qs, p.Quantile)
			}
		}
	}
	sortFloats(qs)
	return qs
}

// percentileAt returns e's average at quantile q, or -1 when e has no
// samples.
func percentileAt(e *clusterinfo.E2E, q float64) float64 {
	if e == nil || e.Count == 0 {
		return -1
	}
	for _, p := range e.Percentiles {
		if p.Quantile == q {
			return p.Average
		}
	}
	return -1
}

// e2eArgs passes a summary and the quantiles to show to "e2ecells".
type e2eArgs struct {
	E *clusterinfo.E2E
	Q []float64
}

// jsonBody is the JSON body of an action button, e.g. {"action":"pause"}.
func jsonBody(key, value string) string {
	return `{"` + key + `":` + strconv.Quote(value) + `}`
}

func sortFloats(s []float64) { slices.Sort(s) }

func sortInactive(s []inactiveTopic) {
	slices.SortFunc(s, func(a, b inactiveTopic) int { return strings.Compare(a.Topic, b.Topic) })
}
