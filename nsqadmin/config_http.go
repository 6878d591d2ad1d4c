package nsqadmin

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// handleConfig is GET and PUT /config/:opt. GET returns any option by its
// TOML name; PUT changes nsqlookupd_http_addresses (a JSON array) or
// log_level (debug, info, warn, error or fatal, bare or as a JSON string).
// Both are allowed only from --allow-config-from-cidr.
func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	if !s.configAllowed(w, r) {
		return
	}
	opt := r.PathValue("opt")
	if r.Method == http.MethodPut {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
			return
		}
		if len(body) == 0 || len(body) > maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "INVALID_VALUE")
			return
		}
		switch opt {
		case "nsqlookupd_http_addresses":
			var addrs []string
			if err := json.Unmarshal(body, &addrs); err != nil {
				writeError(w, http.StatusBadRequest, "INVALID_VALUE")
				return
			}
			for _, a := range addrs {
				if checkAddr(a) != nil {
					writeError(w, http.StatusBadRequest, "INVALID_VALUE")
					return
				}
			}
			s.setLookupds(addrs)
			s.log.Info("config changed", "option", opt, "value", addrs)
		case "log_level":
			lvl, ok := parseLevel(body)
			if !ok || s.cfg.LogLevel == nil {
				writeError(w, http.StatusBadRequest, "INVALID_VALUE")
				return
			}
			s.cfg.LogLevel.Set(lvl)
			s.log.Info("config changed", "option", opt, "value", levelName(lvl))
		default:
			writeError(w, http.StatusBadRequest, "INVALID_OPTION")
			return
		}
	}
	v, ok := s.option(opt)
	if !ok {
		writeError(w, http.StatusBadRequest, "INVALID_OPTION")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// option returns the current value of the option whose TOML name is name.
// Durations are integer nanoseconds, as NSQ encodes them.
func (s *Server) option(name string) (any, bool) {
	c := s.cfg
	lookupds, _ := s.addrs()
	list := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	switch name {
	case "http_address":
		return c.HTTPAddress, true
	case "base_path":
		return "/" + strings.TrimPrefix(s.base, "/"), true
	case "nsqlookupd_http_addresses":
		return list(slices.Clone(lookupds)), true
	case "nsqd_http_addresses":
		return list(c.NSQDHTTPAddresses), true
	case "graphite_url":
		return c.GraphiteURL, true
	case "proxy_graphite":
		return c.ProxyGraphite, true
	case "statsd_prefix":
		return c.StatsdPrefix, true
	case "statsd_counter_format":
		return c.StatsdCounterFormat, true
	case "statsd_gauge_format":
		return c.StatsdGaugeFormat, true
	case "statsd_interval":
		return c.StatsdInterval, true
	case "notification_http_endpoint":
		return c.NotificationHTTPEndpoint, true
	case "http_client_connect_timeout":
		return c.HTTPClientConnectTimeout, true
	case "http_client_request_timeout":
		return c.HTTPClientRequestTimeout, true
	case "http_client_tls_insecure_skip_verify":
		return c.HTTPClientTLSInsecureSkipVerify, true
	case "http_client_tls_root_ca_file":
		return c.HTTPClientTLSRootCAFile, true
	case "http_client_tls_cert":
		return c.HTTPClientTLSCert, true
	case "http_client_tls_key":
		return c.HTTPClientTLSKey, true
	case "allow_config_from_cidr":
		return c.AllowConfigFromCIDR, true
	case "acl_http_header":
		return c.ACLHTTPHeader, true
	case "admin_users":
		return list(c.AdminUsers), true
	case "dev_static_dir":
		return c.DevStaticDir, true
	case "log_level":
		lvl := slog.LevelInfo
		if c.LogLevel != nil {
			lvl = c.LogLevel.Level()
		}
		return levelName(lvl), true
	}
	return nil, false
}

// LevelFatal stands for NSQ's "fatal" log level, which slog lacks: above
// Error, so that setting it silences everything but fatal errors.
const LevelFatal = slog.LevelError + 4

var levelNames = []struct {
	name  string
	level slog.Level
}{
	{"debug", slog.LevelDebug},
	{"info", slog.LevelInfo},
	{"warn", slog.LevelWarn},
	{"error", slog.LevelError},
	{"fatal", LevelFatal},
}

// ParseLevel parses one of NSQ's log level names, in any case.
func ParseLevel(s string) (slog.Level, bool) {
	for _, l := range levelNames {
		if strings.EqualFold(s, l.name) {
			return l.level, true
		}
	}
	return 0, false
}

func parseLevel(body []byte) (slog.Level, bool) {
	body = bytes.TrimSpace(body)
	var s string
	if json.Unmarshal(body, &s) != nil {
		s = string(body)
	}
	return ParseLevel(s)
}

func levelName(l slog.Level) string {
	for _, n := range levelNames {
		if n.level == l {
			return n.name
		}
	}
	return strings.ToLower(l.String())
}
