package cliconfig

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type opts struct {
	addr  string
	n     int
	d     time.Duration
	list  []string
	alias string
}

func flags(o *opts) *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.String("config", "", "")
	fs.StringVar(&o.addr, "tcp-address", "default:1", "")
	fs.IntVar(&o.n, "mem-queue-size", 10, "")
	fs.Var(Duration{V: &o.d}, "msg-timeout", "")
	fs.Var(StringList{V: &o.list}, "lookupd-tcp-address", "")
	fs.StringVar(&o.alias, "node-id", "", "")
	return fs
}

var layers = Layers{
	EnvPrefix:  "T_",
	Aliases:    map[string]string{"node-id": "id", "lookupd-tcp-address": "nsqlookupd_tcp_addresses"},
	Repeatable: map[string]bool{"lookupd-tcp-address": true},
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrecedence: flag > environment > file > default, NSQ's TOML aliases,
// repeatable lists from arrays and comma-separated variables, and bare
// integers as milliseconds.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
tcp_address = "file:1"
mem_queue_size = 5
msg_timeout = 60000
nsqlookupd_tcp_addresses = ["a:1", "b:1"]
id = "7"
`)
	tests := []struct {
		name string
		args []string
		env  []string
		want opts
	}{
		{"defaults", nil, nil, opts{addr: "default:1", n: 10}},
		{"file", []string{"--config=" + file}, nil, opts{addr: "file:1", n: 5, d: time.Minute, list: []string{"a:1", "b:1"}, alias: "7"}},
		{"env beats file", []string{"--config=" + file}, []string{"T_TCP_ADDRESS=env:1", "T_LOOKUPD_TCP_ADDRESS=c:1, d:1"},
			opts{addr: "env:1", n: 5, d: time.Minute, list: []string{"c:1", "d:1"}, alias: "7"}},
		{"flag beats env", []string{"--config=" + file, "--tcp-address=flag:1", "--msg-timeout=2s"}, []string{"T_TCP_ADDRESS=env:1"},
			opts{addr: "flag:1", n: 5, d: 2 * time.Second, list: []string{"a:1", "b:1"}, alias: "7"}},
		{"config from env", nil, []string{"T_CONFIG=" + file}, opts{addr: "file:1", n: 5, d: time.Minute, list: []string{"a:1", "b:1"}, alias: "7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o opts
			fs := flags(&o)
			l := layers
			l.Environ = append([]string{}, tt.env...)
			if err := l.Apply(fs, tt.args, "config"); err != nil {
				t.Fatalf("Apply(%q) = %v", tt.args, err)
			}
			if !reflect.DeepEqual(o, tt.want) {
				t.Errorf("Apply(%q, env %q) = %+v, want %+v", tt.args, tt.env, o, tt.want)
			}
		})
	}
}

// TestErrors: a bad value names the flag and where it came from; an
// unknown or garbled file is an error naming the file.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want string
	}{
		{"unknown key", "nope = 1\n", nil, "unknown option(s) nope"},
		{"garbled file", "tcp_address = \n", nil, "c.toml"},
		{"bad file value", "mem_queue_size = \"many\"\n", nil, "mem_queue_size"},
		{"bad env value", "", []string{"T_MEM_QUEUE_SIZE=many"}, "T_MEM_QUEUE_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o opts
			args := []string{}
			if tt.file != "" {
				args = append(args, "--config="+writeFile(t, tt.file))
			}
			l := layers
			l.Environ = append([]string{}, tt.env...)
			err := l.Apply(flags(&o), args, "config")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestOnUnknown: with OnUnknown set, unknown keys are reported, sorted,
// and the known ones still apply.
func TestOnUnknown(t *testing.T) {
	var o opts
	file := writeFile(t, "zeta = 1\nmem_queue_size = 7\nalpha = 'x'\n")
	var gotFile string
	var gotKeys []string
	l := layers
	l.Environ = []string{}
	l.OnUnknown = func(f string, keys []string) { gotFile, gotKeys = f, keys }
	if err := l.Apply(flags(&o), []string{"--config=" + file}, "config"); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if gotFile != file || strings.Join(gotKeys, ",") != "alpha,zeta" {
		t.Errorf("OnUnknown(%q, %q), want (%q, [alpha zeta])", gotFile, gotKeys, file)
	}
	if o.n != 7 {
		t.Errorf("mem_queue_size = %d, want 7", o.n)
	}
}
