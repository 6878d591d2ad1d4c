package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Usage is a process's CPU time and resident memory at one moment.
type Usage struct {
	CPU time.Duration
	RSS int64 // bytes
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat. USER_HZ is
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// processUsage reads the CPU time (user + system, all threads) and RSS of
// pid from /proc.
func processUsage(pid int) (Usage, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Usage{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return Usage{}, err
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return Usage{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	return Usage{CPU: cpu, RSS: rss}, nil
}

// parseStatCPU returns utime + stime from the contents of /proc/<pid>/stat.
// The command name (field 2) may contain spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	// After ") " come fields 3 (state) onwards; utime and stime are
	// fields 14 and 15.
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// parseStatusRSS returns VmRSS from the contents of /proc/<pid>/status.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("bad VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}
