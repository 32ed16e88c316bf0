package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shopsphere/shardflow/internal/extract"
)

// setFailpoint makes the run stop dead at a named point, for the crash tests: it prints
// "failpoint <name> reached" to stderr and blocks until the process is killed.
//
//	SHARDFLOW_FAILPOINT=after-page:N       after the N-th page was read and written
//	SHARDFLOW_FAILPOINT=before-manifest    after the data file is stored, before the manifest
//
// It is never set in production; the tests SIGKILL the process at the point.
func setFailpoint(ex *extract.Extractor, spec string, stderr io.Writer) error {
	hang := func(name string) {
		fmt.Fprintf(stderr, "failpoint %s reached\n", name)
		select {}
	}
	switch name, arg, _ := strings.Cut(spec, ":"); name {
	case "after-page":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return fmt.Errorf("SHARDFLOW_FAILPOINT=%s: want after-page:N with N >= 1", spec)
		}
		ex.AfterPage = func(page int) {
			if page == n {
				hang(spec)
			}
		}
	case "before-manifest":
		ex.BeforeManifest = func() { hang(spec) }
	default:
		return fmt.Errorf("SHARDFLOW_FAILPOINT=%s: unknown failpoint (after-page:N, before-manifest)", spec)
	}
	return nil
}
