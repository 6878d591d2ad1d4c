// Package nsqadmin is the web UI and JSON API over one NSQ cluster, a
// drop-in replacement for NSQ's nsqadmin: same flags, same routes, same
// JSON, plus live charts that need no Graphite.
//
// # What it owns
//
// A Server owns one HTTP listener and serves, under --base-path:
//
//   - the UI pages (topics, topic, channel, nodes, node, lookup, counter),
//     rendered with html/template from templates/ and enhanced by the small
//     ES modules in static/ (refresh in place, confirmation dialogs, live
//     SVG charts, the counter). Both directories are embedded; there is no
//     JavaScript build step;
//   - NSQ's JSON API under /api (topics, channels, nodes, counter, graphite
//     and the admin actions), GET/PUT /config/:opt and /ping;
//   - /api/overview, an nsqx addition: every topic aggregated over the
//     nodes, with rates and cluster totals, for the topics page and the
//     cluster chart.
//   - GET /metrics: Prometheus metrics of nsqadmin's own work (requests
//     served, requests to the nodes, admin actions, notifications, nodes
//     up and down as last seen) from a registry of the Server's own; see
//     metrics.go.
//
// Every request asks the cluster afresh through internal/clusterinfo,
// which queries all lookupds and nsqds concurrently with timeouts. Nodes
// that fail are named in the response's "message" (NSQ's partial-failure
// warning) and the page still renders; only when every node fails does
// the API answer 502 UPSTREAM_ERROR. The browser polls the same JSON
// endpoints for the charts and keeps their history itself, so nsqadmin
// holds no time series; it remembers only the last 30 seconds of message
// counts per topic, channel and node to show rates (rateTracker).
//
// # Security
//
// With --admin-user set, write actions require the --acl-http-header of
// the request (set by a trusted authenticating proxy) to name an admin;
// others get 403 FORBIDDEN and a read-only UI. Requests that change state
// are refused when a browser marks them cross-origin
// (http.CrossOriginProtection), so another site cannot drive an admin's
// browser; scripts that send no Origin or Sec-Fetch-Site keep working as
// with NSQ. /config is limited to --allow-config-from-cidr.
//
// # Concurrency
//
// Run starts two goroutines and stops both before it returns: the HTTP
// server and the notifier, which POSTs admin actions to
// --notification-http-endpoint one at a time from a bounded queue (full:
// dropped and logged). Handlers run on net/http's goroutines; the only
// state they share is the lookupd list (Server.mu, changed by PUT
// /config), the rate tracker (its own mutex), the notifier's queue and
// the metrics (the node states under their own mutex, taken after
// Server.mu is released).
package nsqadmin
