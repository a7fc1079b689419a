// Command testreport runs go test -json with the arguments it is given and
// prints what a person reading `make test` needs: each package's result
// line, the output of every failed test, then every skipped test with its
// reason and a count. It exits 1 when go test fails or a test fails.
// Benchmarks (-bench) count as tests: a skipped one is listed and judged
// as a skipped test is.
//
// With SMOLVMM_ALLOWED_SKIPS naming an allow-list file (CI), a skip that
// no entry of the list allows fails the run too: CI must not pass while a
// test it is meant to run skips. A list with no entries allows no skip.
// An entry that matched no skip of a package the run ran tests of
// (benchmarks, for a benchmark's entry) is reported as stale, a warning
// only: which tests skip depends on the host. The file
// holds one entry a line,
//
//	PACKAGE TEST REASON
//
// PACKAGE the package's import path or its tail after the module path
// ("vmm", "imagebuilder"), TEST the full name of the test or subtest, and
// REASON (the rest of the line) text its skip message must contain. Each
// entry follows its own comment lines (#) saying why the skip is allowed.
//
// Usage:
//
//	go run ./internal/testreport [go test flags] [packages]
//
// $GO names the go command (default "go").
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// AllowVar names the allow-list file; unset, every skip is allowed.
const AllowVar = "SMOLVMM_ALLOWED_SKIPS"

func main() {
	var allow *allowList // nil: no list given, every skip allowed
	if file := os.Getenv(AllowVar); file != "" {
		entries, err := readAllowList(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testreport: %s=%s: %v\n", AllowVar, file, err)
			os.Exit(2)
		}
		allow = &allowList{file: file, entries: entries}
	}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(1)
	}
	r := newReport(os.Stdout, allow)
	readErr := r.read(out)
	waitErr := cmd.Wait()
	ok := r.summary()
	if readErr != nil {
		fmt.Fprintf(os.Stderr, "testreport: reading go test -json: %v\n", readErr)
		ok = false
	}
	if waitErr != nil {
		if ok { // else the report says why
			fmt.Fprintf(os.Stderr, "testreport: %s: %v\n", strings.Join(cmd.Args, " "), waitErr)
		}
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
}

// allowList is the allow-list given. A list without entries is still a
// list: it allows no skip, unlike no list at all.
type allowList struct {
	file    string
	entries []allowed
}

// allowed is one entry of the allow-list.
type allowed struct {
	pkg, test, reason string
	line              int
	used              bool
}

// readAllowList parses the allow-list file.
func readAllowList(file string) ([]allowed, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseAllowList(string(data))
}

func parseAllowList(data string) ([]allowed, error) {
	var list []allowed
	why := false
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			why = false
		case strings.HasPrefix(line, "#"):
			why = why || strings.TrimSpace(line[1:]) != ""
		default:
			f := strings.Fields(line)
			if len(f) < 3 {
				return nil, fmt.Errorf("line %d: %q: want PACKAGE TEST REASON (text the skip message contains)", i+1, line)
			}
			if !why {
				return nil, fmt.Errorf("line %d: %s %s: no comment above it saying why the skip is allowed", i+1, f[0], f[1])
			}
			list = append(list, allowed{pkg: f[0], test: f[1], reason: strings.Join(f[2:], " "), line: i + 1})
			why = false // the next entry says its own why
		}
	}
	return list, nil
}

// skip is one skipped test.
type skip struct {
	pkg, test, reason string
	allowedBy         *allowed
}

// report follows the events of one go test -json run.
type report struct {
	w       io.Writer
	allow   *allowList          // nil: every skip is allowed
	ran     map[string]bool     // by package and kind (ranKind): what the run ran
	lines   map[string][]line   // by package: output of tests not ended yet
	pkgOut  map[string][]string // by package: its output outside any test
	ended   map[string]string   // by package and test: how each test ended
	skips   []skip
	counts  map[string]int // by action: pass, fail, skip
	pkgFail int
}

// line is one line of a test's output.
type line struct{ test, text string }

func newReport(w io.Writer, allow *allowList) *report {
	return &report{w: w, allow: allow, ran: map[string]bool{}, lines: map[string][]line{}, pkgOut: map[string][]string{}, ended: map[string]string{}, counts: map[string]int{}}
}

func (r *report) read(rd io.Reader) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event: something the go command printed itself.
			fmt.Fprintln(r.w, sc.Text())
			continue
		}
		r.event(e)
	}
	return sc.Err()
}

// framing tells the lines go test -v adds around a test's own output, and
// the line of its own name a benchmark starts with.
func framing(l line) bool {
	s := strings.TrimSpace(l.text)
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- SKIP"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return s == l.test
}

// benchHeader tells the lines go test prints before a package's benchmark
// results: nothing a report needs.
func benchHeader(s string) bool {
	for _, p := range []string{"goos: ", "goarch: ", "pkg: ", "cpu: "} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (r *report) event(e event) {
	switch e.Action {
	case "build-output":
		io.WriteString(r.w, e.Output)
	case "run":
		r.ran[e.Package+" "+ranKind(e.Test)] = true
		// Benchmarks run one at a time, and one that passes has no end
		// event: the next one starting ends those before it.
		if strings.HasPrefix(e.Test, "Benchmark") && !strings.Contains(e.Test, "/") {
			r.benchmarksPassed(e.Package, e.Test)
		}
	case "output":
		if e.Test == "" {
			if e.Output != "PASS\n" && !benchHeader(e.Output) {
				r.pkgOut[e.Package] = append(r.pkgOut[e.Package], e.Output)
			}
			return
		}
		r.lines[e.Package] = append(r.lines[e.Package], line{e.Test, e.Output})
	case "pass", "fail", "skip":
		if e.Test == "" {
			// The package's own lines ("ok", "FAIL", a panic's) come
			// last, after the output of its tests that never ended.
			if e.Action == "fail" {
				r.pkgFail++
				r.unfinished(e.Package)
			} else {
				r.benchmarksPassed(e.Package, "")
			}
			for _, l := range r.pkgOut[e.Package] {
				io.WriteString(r.w, l)
			}
			delete(r.lines, e.Package)
			delete(r.pkgOut, e.Package)
			return
		}
		r.counts[e.Action]++
		r.ended[e.Package+" "+e.Test] = e.Action
		if e.Action == "skip" {
			r.skipped(e.Package, e.Test)
		}
		if !strings.Contains(e.Test, "/") {
			r.topEnded(e.Package, e.Test, e.Action)
		}
	}
}

// benchmarksPassed counts as passed the benchmarks of pkg, and their
// sub-benchmarks, that have not ended, but for next and its own, and
// forgets their lines.
func (r *report) benchmarksPassed(pkg, next string) {
	var tops []string
	seen := map[string]bool{}
	for _, l := range r.lines[pkg] {
		top, _, _ := strings.Cut(l.test, "/")
		if !strings.HasPrefix(top, "Benchmark") || top == next || seen[l.test] {
			continue
		}
		seen[l.test] = true
		if r.ended[pkg+" "+l.test] == "" {
			r.counts["pass"]++
			r.ended[pkg+" "+l.test] = "pass"
		}
		if !seen["top "+top] {
			seen["top "+top] = true
			tops = append(tops, top)
		}
	}
	for _, top := range tops {
		r.topEnded(pkg, top, "pass")
	}
}

// within tells whether test is top or one of its subtests.
func within(test, top string) bool {
	return test == top || strings.HasPrefix(test, top+"/")
}

// topEnded prints the output of a failed top-level test and of its failed
// subtests, and forgets the lines of the test and its subtests.
func (r *report) topEnded(pkg, top, action string) {
	var keep []line
	for _, l := range r.lines[pkg] {
		if !within(l.test, top) {
			keep = append(keep, l)
			continue
		}
		if action == "fail" && (l.test == top || r.ended[pkg+" "+l.test] == "fail") && !framing(l) {
			io.WriteString(r.w, l.text)
		}
	}
	r.lines[pkg] = keep
}

// unfinished prints the output of the tests of a failed package that never
// ended (a panic, a timeout, a test binary that exited).
func (r *report) unfinished(pkg string) {
	for _, l := range r.lines[pkg] {
		if !framing(l) {
			io.WriteString(r.w, l.text)
		}
	}
}

// skipped records a skip with its reason: the test's own output.
func (r *report) skipped(pkg, test string) {
	var reason []string
	for _, l := range r.lines[pkg] {
		if l.test == test && !framing(l) {
			if s := strings.TrimSpace(l.text); s != "" {
				reason = append(reason, s)
			}
		}
	}
	s := skip{pkg: pkg, test: test, reason: strings.Join(reason, " ")}
	for i := range r.allowed() {
		a := &r.allow.entries[i]
		if a.test == test && a.names(pkg) && strings.Contains(s.reason, a.reason) {
			a.used = true
			s.allowedBy = a
			break
		}
	}
	r.skips = append(r.skips, s)
}

// allowed returns the entries of the allow-list, none without one.
func (r *report) allowed() []allowed {
	if r.allow == nil {
		return nil
	}
	return r.allow.entries
}

// names tells whether the entry's package is pkg.
func (a *allowed) names(pkg string) bool {
	return a.pkg == pkg || strings.HasSuffix(pkg, "/"+a.pkg)
}

// summary prints the skips and the counts, and tells whether the run
// passed: no test or package failed and every skip is allowed.
func (r *report) summary() bool {
	denied := 0
	if len(r.skips) > 0 {
		fmt.Fprintf(r.w, "\nskipped (%d):\n", len(r.skips))
		for _, s := range r.skips {
			mark := ""
			switch {
			case r.allow == nil:
			case s.allowedBy != nil:
				mark = fmt.Sprintf(" [allowed: line %d]", s.allowedBy.line)
			default:
				mark = " [NOT ALLOWED]"
				denied++
			}
			fmt.Fprintf(r.w, "  %s %s%s: %s\n", s.pkg, s.test, mark, s.reason)
		}
	}
	fmt.Fprintf(r.w, "\ntests: %d passed, %d failed, %d skipped; packages failed: %d\n", r.counts["pass"], r.counts["fail"], r.counts["skip"], r.pkgFail)
	if denied > 0 {
		fmt.Fprintf(r.w, "%d skipped tests are not in %s's list (%s): make them run, or add an entry saying why they may skip\n", denied, AllowVar, r.allow.file)
	}
	r.stale()
	return r.counts["fail"] == 0 && r.pkgFail == 0 && denied == 0
}

// ranKind tells benchmarks from tests: a run of the one (make benchcheck's
// -run '^$') says nothing of the other's skips.
func ranKind(test string) string {
	if strings.HasPrefix(test, "Benchmark") {
		return "benchmark"
	}
	return "test"
}

// stale warns of the allow-list's entries that matched no skip of a package
// this run ran tests of, or benchmarks for a benchmark's entry (a run of
// other packages, or of the other kind, says nothing of them). Not a
// failure: a test skips on one host and runs on another; but an entry no
// host needs any more should go.
func (r *report) stale() {
	for i := range r.allowed() {
		a := &r.allow.entries[i]
		if a.used {
			continue
		}
		for k := range r.ran {
			pkg, kind, _ := strings.Cut(k, " ")
			if kind == ranKind(a.test) && a.names(pkg) {
				fmt.Fprintf(r.w, "warning: %s line %d (%s %s %q) matched no skip: remove it if no host needs it\n", r.allow.file, a.line, a.pkg, a.test, a.reason)
				break
			}
		}
	}
}
