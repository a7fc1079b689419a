package main

import (
	"strings"
	"testing"
)

// stream is go test -json output of a package with a passing test, a
// failing subtest, two skips and the package's end.
const stream = `{"Action":"start","Package":"m/p"}
{"Action":"run","Package":"m/p","Test":"TestA"}
{"Action":"output","Package":"m/p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"m/p","Test":"TestA","Output":"    a_test.go:3: note\n"}
{"Action":"run","Package":"m/p","Test":"TestA/s"}
{"Action":"output","Package":"m/p","Test":"TestA/s","Output":"=== RUN   TestA/s\n"}
{"Action":"output","Package":"m/p","Test":"TestA/s","Output":"    a_test.go:5: no vfat here\n"}
{"Action":"output","Package":"m/p","Test":"TestA/s","Output":"        second line\n"}
{"Action":"output","Package":"m/p","Test":"TestA/s","Output":"--- SKIP: TestA/s (0.00s)\n"}
{"Action":"skip","Package":"m/p","Test":"TestA/s"}
{"Action":"run","Package":"m/p","Test":"TestA/ok"}
{"Action":"output","Package":"m/p","Test":"TestA/ok","Output":"    a_test.go:7: quiet pass\n"}
{"Action":"pass","Package":"m/p","Test":"TestA/ok"}
{"Action":"output","Package":"m/p","Test":"TestA/f","Output":"    a_test.go:9: bad value\n"}
{"Action":"output","Package":"m/p","Test":"TestA/f","Output":"--- FAIL: TestA/f (0.00s)\n"}
{"Action":"fail","Package":"m/p","Test":"TestA/f"}
{"Action":"output","Package":"m/p","Test":"TestA","Output":"--- FAIL: TestA (0.00s)\n"}
{"Action":"fail","Package":"m/p","Test":"TestA"}
{"Action":"output","Package":"m/p","Test":"TestB","Output":"    b_test.go:4: needs root\n"}
{"Action":"skip","Package":"m/p","Test":"TestB"}
{"Action":"output","Package":"m/p","Test":"TestC","Output":"    c_test.go:4: passing log\n"}
{"Action":"pass","Package":"m/p","Test":"TestC"}
{"Action":"output","Package":"m/p","Output":"FAIL\n"}
{"Action":"output","Package":"m/p","Output":"FAIL\tm/p\t0.005s\n"}
{"Action":"fail","Package":"m/p"}
`

// passing is stream with every test and the package passing but the skips.
var passing = strings.ReplaceAll(strings.ReplaceAll(stream, `"fail"`, `"pass"`), "FAIL\\tm/p", "ok  \\tm/p")

// prefixed is go test -json output of a passing package whose skips are of
// the subtest TestX/sub and of TestXY.
const prefixed = `{"Action":"run","Package":"m/p","Test":"TestX"}
{"Action":"run","Package":"m/p","Test":"TestX/sub"}
{"Action":"output","Package":"m/p","Test":"TestX/sub","Output":"    x_test.go:4: needs root\n"}
{"Action":"skip","Package":"m/p","Test":"TestX/sub"}
{"Action":"pass","Package":"m/p","Test":"TestX"}
{"Action":"run","Package":"m/p","Test":"TestXY"}
{"Action":"output","Package":"m/p","Test":"TestXY","Output":"    x_test.go:9: needs root\n"}
{"Action":"skip","Package":"m/p","Test":"TestXY"}
{"Action":"output","Package":"m/p","Output":"ok  \tm/p\t0.005s\n"}
{"Action":"pass","Package":"m/p"}
`

// benchStream is go test -json output of benchmarks (-run '^$' -bench .): one
// that runs, one that skips, one with a sub-benchmark that runs and one
// that skips, and one that fails. A benchmark that passes has no end event.
const benchStream = `{"Action":"output","Package":"m/b","Output":"goos: linux\n"}
{"Action":"output","Package":"m/b","Output":"goarch: amd64\n"}
{"Action":"output","Package":"m/b","Output":"pkg: m/b\n"}
{"Action":"output","Package":"m/b","Output":"cpu: AMD EPYC\n"}
{"Action":"run","Package":"m/b","Test":"BenchmarkRuns"}
{"Action":"output","Package":"m/b","Test":"BenchmarkRuns","Output":"=== RUN   BenchmarkRuns\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkRuns","Output":"BenchmarkRuns\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkRuns","Output":"BenchmarkRuns-2    \t"}
{"Action":"output","Package":"m/b","Test":"BenchmarkRuns","Output":"       1\t       351.0 ns/op\n"}
{"Action":"run","Package":"m/b","Test":"BenchmarkSkips"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSkips","Output":"=== RUN   BenchmarkSkips\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSkips","Output":"BenchmarkSkips\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSkips","Output":"    b_test.go:10: needs a thing\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSkips","Output":"--- SKIP: BenchmarkSkips\n"}
{"Action":"skip","Package":"m/b","Test":"BenchmarkSkips"}
{"Action":"run","Package":"m/b","Test":"BenchmarkSubs"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs","Output":"=== RUN   BenchmarkSubs\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs","Output":"BenchmarkSubs\n"}
{"Action":"run","Package":"m/b","Test":"BenchmarkSubs/ok"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/ok","Output":"=== RUN   BenchmarkSubs/ok\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/ok","Output":"BenchmarkSubs/ok\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/ok","Output":"BenchmarkSubs/ok-2 \t       1\t       221.0 ns/op\n"}
{"Action":"run","Package":"m/b","Test":"BenchmarkSubs/skipped"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/skipped","Output":"=== RUN   BenchmarkSubs/skipped\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/skipped","Output":"BenchmarkSubs/skipped\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/skipped","Output":"    b_test.go:17: needs another thing\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkSubs/skipped","Output":"--- SKIP: BenchmarkSubs/skipped\n"}
{"Action":"skip","Package":"m/b","Test":"BenchmarkSubs/skipped"}
{"Action":"run","Package":"m/b","Test":"BenchmarkFails"}
{"Action":"output","Package":"m/b","Test":"BenchmarkFails","Output":"=== RUN   BenchmarkFails\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkFails","Output":"BenchmarkFails\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkFails","Output":"    b_test.go:20: broken\n"}
{"Action":"output","Package":"m/b","Test":"BenchmarkFails","Output":"--- FAIL: BenchmarkFails\n"}
{"Action":"fail","Package":"m/b","Test":"BenchmarkFails"}
{"Action":"output","Package":"m/b","Output":"FAIL\n"}
{"Action":"output","Package":"m/b","Output":"exit status 1\n"}
{"Action":"output","Package":"m/b","Output":"FAIL\tm/b\t0.025s\n"}
{"Action":"fail","Package":"m/b"}
`

// benchPassing is benchStream without its failing benchmark: a passing
// package.
var benchPassing = benchStream[:strings.Index(benchStream, `{"Action":"run","Package":"m/b","Test":"BenchmarkFails"}`)] +
	`{"Action":"output","Package":"m/b","Output":"PASS\n"}` + "\n" +
	`{"Action":"output","Package":"m/b","Output":"ok  \tm/b\t0.025s\n"}` + "\n" +
	`{"Action":"pass","Package":"m/b"}` + "\n"

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name, stream, allow string
		list                bool // whether an allow-list (allow, maybe empty) is given
		ok                  bool
		want, notWant       []string
	}{{
		name:    "failures and skips",
		stream:  stream,
		want:    []string{"a_test.go:3: note\n", "a_test.go:9: bad value\n--- FAIL: TestA/f", "--- FAIL: TestA (0.00s)\nFAIL\nFAIL\tm/p\t0.005s\n", "m/p TestA/s: a_test.go:5: no vfat here second line\n", "m/p TestB: b_test.go:4: needs root\n", "tests: 2 passed, 2 failed, 2 skipped; packages failed: 1"},
		notWant: []string{"quiet pass", "passing log", "=== RUN", "NOT ALLOWED"},
	}, {
		name:   "passing package, skips allowed",
		stream: passing,
		list:   true,
		allow:  "# vfat is missing on CI\np TestA/s no vfat\n\n# root only\nm/p TestB needs root\n",
		ok:     true,
		want:   []string{"ok  \tm/p", "TestA/s [allowed: line 2]", "TestB [allowed: line 5]"},
	}, {
		name:   "a skip whose reason differs is not allowed",
		stream: passing,
		list:   true,
		allow:  "# vfat\np TestA/s no vfat\n\n# root\nm/p TestB built with cgo\n",
		want:   []string{"TestB [NOT ALLOWED]: b_test.go:4: needs root", "1 skipped tests are not in"},
	}, {
		name:   "another package's test is not allowed",
		stream: passing,
		list:   true,
		allow:  "# vfat\nq TestA/s no vfat\n\n# root\nm/p TestB needs root\n",
		want:   []string{"TestA/s [NOT ALLOWED]"},
	}, {
		// TEST is a test's full name: an entry for TestX allows neither
		// its subtests' skips nor those of a test whose name it begins.
		name:   "an entry allows its test alone",
		stream: prefixed,
		list:   true,
		allow:  "# root\nm/p TestX needs root\n",
		want:   []string{"m/p TestX/sub [NOT ALLOWED]", "m/p TestXY [NOT ALLOWED]", "2 skipped tests are not in", "line 2 (m/p TestX \"needs root\") matched no skip"},
	}, {
		name:   "an entry allows its package alone",
		stream: strings.ReplaceAll(passing, `"m/p"`, `"m/xp"`),
		list:   true,
		allow:  "# vfat\np TestA/s no vfat\n\n# root\nxp TestB needs root\n",
		want:   []string{"m/xp TestA/s [NOT ALLOWED]", "m/xp TestB [allowed: line 5]"},
	}, {
		name:    "benchmarks: passes counted, skips judged",
		stream:  benchPassing,
		list:    true,
		allow:   "# why\nb BenchmarkSkips needs a thing\n\n# a test's\nb TestT r\n\n# gone\nb BenchmarkGone r\n",
		want:    []string{"warning: allow.list line 8 (b BenchmarkGone \"r\") matched no skip", "ok  \tm/b", "m/b BenchmarkSkips [allowed: line 2]: b_test.go:10: needs a thing\n", "m/b BenchmarkSubs/skipped [NOT ALLOWED]: b_test.go:17: needs another thing\n", "tests: 3 passed, 0 failed, 2 skipped", "1 skipped tests are not in"},
		notWant: []string{"goos:", "ns/op", "BenchmarkRuns", "line 5"},
	}, {
		name:    "benchmarks: a failure's output alone",
		stream:  benchStream,
		want:    []string{"    b_test.go:20: broken\n--- FAIL: BenchmarkFails\nFAIL\nexit status 1\nFAIL\tm/b", "tests: 3 passed, 1 failed, 2 skipped; packages failed: 1"},
		notWant: []string{"goos:", "ns/op", "BenchmarkRuns", "BenchmarkFails\n    b_test.go:20"},
	}, {
		name:   "an empty list allows no skip",
		stream: passing,
		list:   true,
		want:   []string{"TestA/s [NOT ALLOWED]", "TestB [NOT ALLOWED]", "2 skipped tests are not in"},
	}, {
		name:   "a list of comments only allows no skip",
		stream: passing,
		list:   true,
		allow:  "# nothing may skip any more\n\n#\n",
		want:   []string{"TestA/s [NOT ALLOWED]", "TestB [NOT ALLOWED]", "2 skipped tests are not in"},
	}, {
		name:    "no skips, empty list",
		stream:  `{"Action":"pass","Package":"m/p","Test":"TestC"}` + "\n" + `{"Action":"pass","Package":"m/p"}` + "\n",
		list:    true,
		ok:      true,
		notWant: []string{"NOT ALLOWED", "warning"},
	}, {
		name:    "an entry that matched no skip is stale, a warning",
		stream:  passing,
		list:    true,
		allow:   "# vfat\np TestA/s no vfat\n\n# root\nm/p TestB needs root\n\n# gone\np TestGone whatever\n\n# other package, not run\nq TestQ r\n",
		ok:      true,
		want:    []string{"warning: allow.list line 8 (p TestGone \"whatever\") matched no skip"},
		notWant: []string{"line 11", "line 2 (", "line 5 ("},
	}, {
		name:   "a package that dies prints its unfinished tests first",
		stream: `{"Action":"output","Package":"m/q","Test":"TestP","Output":"    p_test.go:3: before\n"}` + "\n" + `{"Action":"output","Package":"m/q","Output":"panic: boom\n"}` + "\n" + `{"Action":"output","Package":"m/q","Output":"FAIL\tm/q\t0.1s\n"}` + "\n" + `{"Action":"fail","Package":"m/q"}` + "\n",
		want:   []string{"    p_test.go:3: before\npanic: boom\nFAIL\tm/q\t0.1s\n", "packages failed: 1"},
	}, {
		name:   "build output",
		stream: `{"ImportPath":"m/b [m/b.test]","Action":"build-output","Output":"b_test.go:3:27: undefined: x\n"}` + "\n" + `{"Action":"output","Package":"m/b","Output":"FAIL\tm/b [build failed]\n"}` + "\n" + `{"Action":"fail","Package":"m/b"}` + "\n",
		want:   []string{"b_test.go:3:27: undefined: x\nFAIL\tm/b [build failed]\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var allow *allowList
			if tc.list {
				entries, err := parseAllowList(tc.allow)
				if err != nil {
					t.Fatal(err)
				}
				allow = &allowList{file: "allow.list", entries: entries}
			}
			var out strings.Builder
			r := newReport(&out, allow)
			if err := r.read(strings.NewReader(tc.stream)); err != nil {
				t.Fatal(err)
			}
			ok := r.summary()
			if ok != tc.ok {
				t.Errorf("summary() = %v, want %v", ok, tc.ok)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestParseAllowList(t *testing.T) {
	for _, tc := range []struct{ list, err string }{
		{"# why\nvmm TestX some reason\n", ""},
		{"# why\n# more why\nvmm TestX r\n\n# other\nsandbox TestY r\n", ""},
		{"vmm TestX some reason\n", "line 1: vmm TestX: no comment above it saying why"},
		{"# why\nvmm TestX a\n\nvmm TestY b\n", "line 4: vmm TestY: no comment above it"},
		{"#\nvmm TestX a\n", "no comment above it"},
		{"# why\nvmm TestX a\nvmm TestY b\n", "line 3: vmm TestY: no comment above it"},
		{"# why\nvmm TestX\n", `line 2: "vmm TestX": want PACKAGE TEST REASON`},
	} {
		_, err := parseAllowList(tc.list)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseAllowList(%q) = %v, want %q", tc.list, err, tc.err)
		}
	}
}
