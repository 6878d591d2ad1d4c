package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsqx/nsqx/internal/version"
)

// TestCheckCommand runs "nsqd check" for each exit status: 0 clean, 1
// problems found, 2 usage errors and data paths that cannot be checked.
func TestCheckCommand(t *testing.T) {
	clean := t.TempDir()
	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, "nsqd.dat"), []byte("{garbled"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"check", "--data-path", clean}, 0, "no damage found", ""},
		{[]string{"check", "-data-path=" + clean}, 0, "no damage found", ""},
		{[]string{"check", "--data-path=" + damaged}, 1, "DAMAGE nsqd.dat: garbled", ""},
		{[]string{"check", "--data-path", filepath.Join(clean, "missing")}, 2, "", "no such file or directory"},
		{[]string{"check", "--data-path", file}, 2, "", "is not a directory"},
		{[]string{"check", "--mem-queue-size=0"}, 2, "", "flag provided but not defined: -mem-queue-size\nUsage: nsqd check"},
		{[]string{"check", "--data-path", clean, "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"check", "-h"}, 0, "Usage: nsqd check --data-path DIR", ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
				tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
		if tt.stderr == "" && stderr.Len() != 0 {
			t.Errorf("run(%q) wrote to stderr: %s", tt.args, stderr.String())
		}
	}
}

// TestCheckCommandLeavesDaemonFlags: without "check" first, the arguments
// are the daemon's as before.
func TestCheckCommandLeavesDaemonFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--data-path=" + t.TempDir(), "--version"}
	if code := run(args, &stdout, &stderr); code != 0 || stdout.String() != version.String("nsqd")+"\n" {
		t.Errorf("run(%q) = %d, stdout %q, stderr %q; want the daemon's version", args, code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "nsqd check --data-path DIR") {
		t.Errorf("daemon usage does not mention nsqd check:\n%s", stderr.String())
	}
}
