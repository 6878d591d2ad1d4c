package clusterinfo

import (
	"cmp"
	"strconv"
	"strings"
)

// semver is the part of a semantic version nsqadmin compares: a node is
// out of date when another runs a higher version.
type semver struct {
	major, minor, patch int
	pre                 string // "" sorts after any pre-release
}

// parseSemver parses "1.3.0", "v1.2.1-alpha" or "1.3.0+build"; anything
// else is 0.0.0, as NSQ treats an unparsable version.
func parseSemver(s string) semver {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "+")
	core, pre, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return semver{}
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return semver{}
		}
		n[i] = v
	}
	return semver{n[0], n[1], n[2], pre}
}

func (a semver) compare(b semver) int {
	if c := cmp.Or(cmp.Compare(a.major, b.major), cmp.Compare(a.minor, b.minor), cmp.Compare(a.patch, b.patch)); c != 0 {
		return c
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	return cmp.Compare(a.pre, b.pre)
}
