package kstrip

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

var gdbValue = regexp.MustCompile(`(?m)^\$(\d+) = (-?\d+)$`)

// gdbStates asks gdb for cfdata[i].cf_fstate of every entry of the
// kernel at path, in one gdb run.
func gdbStates(t testing.TB, path string, n int) []State {
	t.Helper()
	args := []string{"-batch", "-nx"}
	for i := 0; i < n; i++ {
		args = append(args, "-ex", fmt.Sprintf("print cfdata[%d].cf_fstate", i))
	}
	out, err := exec.Command("gdb", append(args, path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	m := gdbValue.FindAllStringSubmatch(string(out), -1)
	if len(m) != n {
		t.Fatalf("gdb printed %d values, want %d:\n%s", len(m), n, out)
	}
	s := make([]State, n)
	for i, v := range m {
		x, _ := strconv.Atoi(v[2])
		s[i] = State(x)
	}
	return s
}

// TestGDBAgrees checks kstrip's result with an independent reader: gdb,
// using the debug information gcc wrote for struct cfdata.
func TestGDBAgrees(t *testing.T) {
	if _, err := exec.LookPath("gdb"); err != nil {
		t.Skip("gdb not installed: cannot cross-check cf_fstate with an independent reader")
	}
	for _, bits := range []int{32, 64} {
		t.Run(strconv.Itoa(bits), func(t *testing.T) {
			path := buildKernel(t, kstriptest.Options{Bits: bits, Entries: generic, Debug: true})
			k, _ := parseFile(t, path)
			if got := gdbStates(t, path, len(generic)); fmt.Sprint(got) != fmt.Sprint(states(k)) {
				t.Fatalf("before: gdb %v, kstrip %v", got, states(k))
			}
			r, err := k.Plan(Plan{Strip: true, Keep: k.Applicable(DefaultKeep), Enable: []string{"ne0"}})
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
		})
	}
}
