package nsqadmin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nsqx/nsqx/internal/clusterinfo"
)

// notifyQueue bounds the notifications waiting to be sent; beyond it new
// ones are dropped (and logged) rather than slowing admin actions down.
const notifyQueue = 256

// AdminAction is the JSON body POSTed to --notification-http-endpoint
// after each admin action, field for field as NSQ sends it.
type AdminAction struct {
	Action    string `json:"action"`
	Topic     string `json:"topic"`
	Channel   string `json:"channel,omitempty"`
	Node      string `json:"node,omitempty"`
	Timestamp int64  `json:"timestamp"`
	User      string `json:"user,omitempty"`
	RemoteIP  string `json:"remote_ip"`
	UserAgent string `json:"user_agent"`
	URL       string `json:"url"` // the request that caused the action
	Via       string `json:"via"` // hostname of this nsqadmin
}

// notifier sends AdminActions one at a time from its own goroutine, so an
// action's response never waits for the endpoint.
type notifier struct {
	endpoint string
	ci       *clusterinfo.Client
	log      *slog.Logger
	done     func(result string) // counts each notification's fate

	mu     sync.Mutex // guards closed and sending on queue
	closed bool
	queue  chan *AdminAction
}

func newNotifier(endpoint string, ci *clusterinfo.Client, log *slog.Logger, done func(result string)) *notifier {
	return &notifier{endpoint: endpoint, ci: ci, log: log, done: done, queue: make(chan *AdminAction, notifyQueue)}
}

// enqueue queues a without blocking; it is dropped when the queue is full
// or the notifier is closed.
func (n *notifier) enqueue(a *AdminAction) {
	if n.endpoint == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.done(resultDropped)
		return
	}
	select {
	case n.queue <- a:
	default:
		n.log.Warn("notification queue full; dropping", "action", a.Action, "topic", a.Topic)
		n.done(resultDropped)
	}
}

// close stops enqueue; run returns once the queue is drained.
func (n *notifier) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
}

// run sends queued notifications until the queue is closed and empty, or
// ctx ends (then the rest are dropped).
func (n *notifier) run(ctx context.Context) {
	for a := range n.queue {
		if ctx.Err() != nil {
			n.log.Warn("shutting down; dropping notification", "action", a.Action, "topic", a.Topic)
			n.done(resultDropped)
			continue
		}
		body, err := json.Marshal(a)
		if err != nil {
			n.log.Error("encode notification", "err", err)
			n.done(resultError)
			continue
		}
		n.log.Info("POSTing notification", "url", n.endpoint, "action", a.Action)
		if err := n.ci.PostJSON(ctx, n.endpoint, body); err != nil {
			n.log.Error("notification failed", "url", n.endpoint, "action", a.Action, "err", err)
			n.done(resultError)
			continue
		}
		n.done(resultOK)
	}
}

// action builds the notification of an admin action made by r.
func (s *Server) action(r *http.Request, action, topic, channel, node string) {
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if r.TLS != nil || r.Header.Get("X-Scheme") == "https" {
		u.Scheme = "https"
	}
	user := basicAuthUser(r)
	if user == "" && len(s.cfg.AdminUsers) > 0 {
		user = r.Header.Get(s.cfg.ACLHTTPHeader)
	}
	s.notify.enqueue(&AdminAction{
		Action:    action,
		Topic:     topic,
		Channel:   channel,
		Node:      node,
		Timestamp: time.Now().Unix(),
		User:      user,
		RemoteIP:  r.RemoteAddr,
		UserAgent: r.UserAgent(),
		URL:       u.String(),
		Via:       s.hostname,
	})
}

// basicAuthUser is the user name of r's HTTP Basic credentials, if any.
func basicAuthUser(r *http.Request) string {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || scheme != "Basic" {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return ""
	}
	user, _, ok := strings.Cut(string(b), ":")
	if !ok {
		return ""
	}
	return user
}
