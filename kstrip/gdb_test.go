package kstrip

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

var gdbValue = regexp.MustCompile(`(?m)^\$(\d+) = (-?\d+)$`)

// gdbStates asks gdb for cfdata[i].cf_fstate of every entry of the
// kernel at path, in one gdb run.
func gdbStates(t testing.TB, path string, n int) []State {
	t.Helper()
	var s []State
	for _, x := range gdbField(t, path, n, "cf_fstate") {
		s = append(s, State(x))
	}
	return s
}

// gdbField asks gdb for cfdata[i].field of every entry of the kernel at
// path, in one gdb run.
func gdbField(t testing.TB, path string, n int, field string) []int {
	t.Helper()
	args := []string{"-batch", "-nx"}
	for i := 0; i < n; i++ {
		args = append(args, "-ex", fmt.Sprintf("print (int)cfdata[%d].%s", i, field))
	}
	out, err := exec.Command("gdb", append(args, path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	m := gdbValue.FindAllStringSubmatch(string(out), -1)
	if len(m) != n {
		t.Fatalf("gdb printed %d values, want %d:\n%s", len(m), n, out)
	}
	s := make([]int, n)
	for i, v := range m {
		s[i], _ = strconv.Atoi(v[2])
	}
	return s
}

// TestGDBAgrees checks kstrip's result with an independent reader: gdb,
// using the debug information gcc wrote for struct cfdata, NetBSD 9's
// and 10's.
func TestGDBAgrees(t *testing.T) {
	if _, err := exec.LookPath("gdb"); err != nil {
		t.Skip("gdb not installed: cannot cross-check cf_fstate with an independent reader")
	}
	for _, v := range variants {
		t.Run(v.String(), func(t *testing.T) {
			o := v.opts(generic)
			o.Debug = true
			path := buildKernel(t, o)
			k, _ := parseFile(t, path)
			if got := gdbStates(t, path, len(generic)); fmt.Sprint(got) != fmt.Sprint(states(k)) {
				t.Fatalf("before: gdb %v, kstrip %v", got, states(k))
			}
			r, err := k.Plan(Plan{Strip: true, Keep: defaultKeep(t, k), Enable: []string{"ne0"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Apply(r); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "netbsd.stripped")
			if err := os.WriteFile(out, k.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			want := append([]State(nil), afterDefault...)
			want[40] = NotFound
			if got := gdbStates(t, out, len(generic)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after:\n gdb    %v\n want   %v\n kstrip %v", got, want, states(k))
			}
			// The units, which share a word with the state from NetBSD 10
			// on, are untouched.
			var units []int
			for _, e := range generic {
				units = append(units, e.Unit)
			}
			if got := gdbField(t, out, len(generic), "cf_unit"); !slices.Equal(got, units) {
				t.Errorf("after: gdb units %v, want %v", got, units)
			}
		})
	}
}
