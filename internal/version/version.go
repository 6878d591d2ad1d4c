// Package version holds the version nsqx reports. On the wire (IDENTIFY,
// /info, /stats, lookupd registration) it reports the NSQ version it is
// compatible with, because clients and nsqadmin parse it as semver and
// compare it; --version also names the nsqx release.
package version

import (
	"fmt"
	"runtime"
)

// Compat is the NSQ release whose protocol and APIs nsqx implements.
const Compat = "1.3.0"

// Release is the nsqx release.
const Release = "0.1.0"

// String returns the --version line of a binary: "nsqd v1.3.0 (nsqx 0.1.0, built w/go1.26)".
// The nsqx command itself is the release, so it reads "nsqx 0.1.0 (NSQ 1.3.0
// compatible, built w/go1.26)".
func String(app string) string {
	if app == "nsqx" {
		return fmt.Sprintf("nsqx %s (NSQ %s compatible, built w/%s)", Release, Compat, runtime.Version())
	}
	return fmt.Sprintf("%s v%s (nsqx %s, built w/%s)", app, Compat, Release, runtime.Version())
}
