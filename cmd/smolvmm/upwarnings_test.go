package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestUpPrintsKstripWarnings: up's kstrip step dropped every warning
// kstrip gave; it prints them as smolvmm kstrip does, the first
// maxStripWarnings and a count of the rest, before the step's summary.
func TestUpPrintsKstripWarnings(t *testing.T) {
	many := make([]string, maxStripWarnings+3)
	for i := range many {
		many[i] = fmt.Sprintf("warning number %d", i)
	}
	tests := []struct {
		name     string
		warnings []string
		lines    int    // warning lines printed
		more     string // the count line, "" for none
	}{
		{"none", nil, 0, ""},
		{"two", []string{`scsibus* (scsibus) attaches at any device with interface attribute "scsi", but no driver of this kernel provides it`, "pckbc0 (pckbc_isa) stays enabled"}, 2, ""},
		{"more than are printed", many, maxStripWarnings + 1, "smolvmm up: kstrip warning: 3 more (smolvmm kstrip --dry-run "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.stripWarnings = tc.warnings
			var log bytes.Buffer
			if _, err := up(context.Background(), &log, f.deps(), upOptions{Service: "rescue", Image: filepath.Join(t.TempDir(), "rescue.img")}); err != nil {
				t.Fatal(err)
			}
			out := log.String()
			got := regexp.MustCompile(`(?m)^smolvmm up: kstrip warning: .*$`).FindAllString(out, -1)
			if len(got) != tc.lines {
				t.Fatalf("%d warning lines, want %d:\n%s", len(got), tc.lines, out)
			}
			for i, w := range tc.warnings {
				if i == maxStripWarnings {
					break
				}
				if want := "smolvmm up: kstrip warning: " + w; got[i] != want {
					t.Errorf("line %d = %q, want %q", i, got[i], want)
				}
			}
			if tc.more != "" && !strings.HasPrefix(got[len(got)-1], tc.more) {
				t.Errorf("last line %q, want it to start %q", got[len(got)-1], tc.more)
			}
			if len(got) > 0 && strings.Index(out, got[len(got)-1]) > strings.Index(out, "smolvmm up: kstrip  ") {
				t.Errorf("warnings after the step's summary:\n%s", out)
			}
		})
	}
}

// TestStripKernelWarnings: stripKernel hands up every warning of the
// kstrip library's report.
func TestStripKernelWarnings(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	var got []string
	if _, err := stripKernel(kern, filepath.Join(t.TempDir(), "out"), []string{"sd0"}, func(w string) { got = append(got, w) }); err != nil {
		t.Fatal(err)
	}
	want := `scsibus* (scsibus) attaches at any device with interface attribute "scsi", but no driver of this kernel provides it`
	found := false
	for _, w := range got {
		found = found || strings.Contains(w, want)
	}
	if !found {
		t.Errorf("warnings %q lack %q", got, want)
	}
}
