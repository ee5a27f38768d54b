// Peer for the "select the latest allowed version from 100k tags" benchmark:
// Masterminds/semver v3 (Debian golang-github-masterminds-semver-dev), used the way Flux's
// image-reflector SemVer policy uses it: trim a leading "v", StrictNewVersion, Check against
// the constraint, keep the greatest (the first of equal versions wins).
//
// Build (GOPATH mode; Debian installs v3 under the v1 import path):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o select-go select.go
//
// Usage: select-go TAGS_FILE RANGE [REPS]
// Prints one JSON object: {"peer", "selected", "median_ms", "runs_ms", "tags"}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver"
)

func selectLatest(tags []string, c *semver.Constraints) string {
	var best *semver.Version
	bestTag := ""
	for _, t := range tags {
		v, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v"))
		if err != nil {
			continue
		}
		if !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best = v
			bestTag = t
		}
	}
	return bestTag
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: select-go TAGS_FILE RANGE [REPS]")
		os.Exit(2)
	}
	reps := 7
	if len(os.Args) > 3 {
		n, err := strconv.Atoi(os.Args[3])
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "invalid REPS %q\n", os.Args[3])
			os.Exit(2)
		}
		reps = n
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var tags []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			tags = append(tags, line)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f.Close()

	c, err := semver.NewConstraint(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid range %q: %v\n", os.Args[2], err)
		os.Exit(1)
	}

	selected := selectLatest(tags, c) // warm-up, not timed
	runs := make([]float64, 0, reps)
	for i := 0; i < reps; i++ {
		start := time.Now()
		got := selectLatest(tags, c)
		runs = append(runs, float64(time.Since(start).Nanoseconds())/1e6)
		if got != selected {
			fmt.Fprintln(os.Stderr, "selection changed between runs")
			os.Exit(1)
		}
	}
	sorted := append([]float64(nil), runs...)
	sort.Float64s(sorted)
	out, _ := json.Marshal(map[string]interface{}{
		"peer":      "Masterminds/semver v3 (Go, Debian package)",
		"selected":  selected,
		"median_ms": sorted[len(sorted)/2],
		"runs_ms":   runs,
		"tags":      len(tags),
	})
	fmt.Println(string(out))
}
