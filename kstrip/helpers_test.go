package kstrip

import (
	"fmt"
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

// variant is one kind of kernel the layout-dependent tests run on: i386
// or amd64, with NetBSD 9's struct cfdata (two shorts) or 10's (a 24-bit
// unit and a one-byte state), which the kernel's version note tells.
type variant struct {
	bits    int
	version uint32
}

var variants = []variant{
	{32, kstriptest.Version91}, {64, kstriptest.Version91},
	{32, kstriptest.Version10}, {64, kstriptest.Version10},
}

func (v variant) String() string {
	return fmt.Sprintf("%d-bit %d.%d", v.bits, v.version/100000000, v.version/1000000%100)
}

// opts are the Options for a kernel of variant v with the given entries.
func (v variant) opts(entries []kstriptest.Entry) kstriptest.Options {
	return kstriptest.Options{Bits: v.bits, Version: v.version, Entries: entries}
}

// fileState reads entry i's cf_fstate from image b, as k lays it out.
func fileState(k *Kernel, b []byte, i int) State {
	off := k.StateOffset(i)
	if k.StateSize() == 1 {
		return State(b[off])
	}
	return State(int16(k.ByteOrder().Uint16(b[off:])))
}

// defaultKeep is DefaultKeep as it applies to k (Kernel.Applicable).
func defaultKeep(tb testing.TB, k *Kernel) []string {
	tb.Helper()
	kept, _, err := k.Applicable(DefaultKeep)
	if err != nil {
		tb.Fatal(err)
	}
	return kept
}
