package goid

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/exepages"
)

// ID is the same for calls on one goroutine, differs between two, and
// is never 0.
func TestID(t *testing.T) {
	a, b := ID(), ID()
	if a == 0 || a != b {
		t.Fatalf("two calls on one goroutine gave %d and %d", a, b)
	}
	var other uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); other = ID() }()
	wg.Wait()
	if other == 0 || other == a {
		t.Fatalf("another goroutine's id %d, this one's %d", other, a)
	}
}

// A Set holds the goroutine between Enter and its leave, nested entries
// until the last leave, and no other goroutine meanwhile.
func TestSet(t *testing.T) {
	var s Set
	elsewhere := func() bool {
		c := make(chan bool)
		go func() { c <- s.HoldsCaller() }()
		return <-c
	}
	var leave1, leave2 func()
	for _, st := range []struct {
		name string
		do   func()
		want bool
	}{
		{"empty", func() {}, false},
		{"entered", func() { leave1 = s.Enter() }, true},
		{"entered twice", func() { leave2 = s.Enter() }, true},
		{"left once", func() { leave2() }, true},
		{"left twice", func() { leave1() }, false},
	} {
		st.do()
		if got := s.HoldsCaller(); got != st.want {
			t.Errorf("%s: HoldsCaller %v, want %v", st.name, got, st.want)
		}
		if elsewhere() {
			t.Errorf("%s: HoldsCaller true on another goroutine", st.name)
		}
	}
}

// ID is the id runtime.Stack's header shows, on this goroutine and on
// others: goid.Get reads it at an offset of the runtime's goroutine
// structure, which a new Go version may move.
func TestIDIsRuntimeStacks(t *testing.T) {
	stackID := func() uint64 {
		var buf [64]byte
		n := runtime.Stack(buf[:], false)
		s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
		id, _, _ := strings.Cut(s, " ")
		v, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			t.Errorf("runtime.Stack's header %q: %v", buf[:n], err)
		}
		return v
	}
	for i := 0; i < 3; i++ {
		c := make(chan [2]uint64)
		go func() { c <- [2]uint64{ID(), stackID()} }()
		if got := <-c; got[0] != got[1] {
			t.Errorf("ID %d, runtime.Stack's header says %d", got[0], got[1])
		}
	}
	if got, want := ID(), stackID(); got != want {
		t.Errorf("ID %d, runtime.Stack's header says %d", got, want)
	}
}

// ID reads no traceback tables: once a process has unmapped its
// executable (internal/exepages, as the VMM does when its guest runs),
// runtime.Stack's traceback mapped back ~1 MiB of function, file and line
// tables (13-17 faults of 64 KiB). ID maps back at most its own code.
func TestIDMapsBackNoTables(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ID()
	if _, err := exepages.Release(); err != nil {
		t.Skipf("the test binary's pages cannot be unmapped: %v", err)
	}
	var before, after unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &before) // maps its own code back
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &before)
	ID()
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &after)
	if n := after.Minflt - before.Minflt; n > 2 {
		t.Errorf("ID took %d page faults after the executable was unmapped, want at most 2 (its own code)", n)
	}
}
