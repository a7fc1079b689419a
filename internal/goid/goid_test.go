package goid

import (
	"sync"
	"testing"
)

// ID is the same for calls on one goroutine, differs between two, and
// is never 0 (which a failed parse of runtime.Stack's header would give).
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
