// Package buildinfo says which code a task binary is, for the manifests it writes and
// the finance runs it pins.
package buildinfo

import "runtime/debug"

// CodeVersion is the VCS revision the running binary was built from: the first 12 hex
// digits, with "-dirty" when the tree had uncommitted changes; the module version when
// the build has no VCS information; "unknown" without build information.
func CodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return fromSettings(bi)
}

func fromSettings(bi *debug.BuildInfo) string {
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return bi.Main.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
