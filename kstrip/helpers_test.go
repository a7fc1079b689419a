package kstrip

import (
	"os"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

func par(iattr, name string, unit int) *kstriptest.Parent {
	return &kstriptest.Parent{IAttr: iattr, Name: name, Unit: unit}
}

// generic is the table the tests expect; indexes in tests refer to it.
var generic = kstriptest.Generic

// buildKernel builds a kernel in a fresh temporary directory, skipping
// the test when gcc or ld cannot.
func buildKernel(tb testing.TB, o kstriptest.Options) string {
	tb.Helper()
	if o.Provides == nil {
		o.Provides = kstriptest.GenericProvides
	}
	if err := kstriptest.Available(o.Bits); err != nil {
		tb.Skipf("cannot build %d-bit test kernels: %v", o.Bits, err)
	}
	path, err := kstriptest.Build(tb.TempDir(), o)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// parseFile reads and parses path.
func parseFile(tb testing.TB, path string) (*Kernel, []byte) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	orig := append([]byte(nil), data...)
	k, err := Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	return k, orig
}
