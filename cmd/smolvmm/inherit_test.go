package main

import (
	"maps"
	"slices"
	"testing"
)

// TestPassedFDs: the descriptors a VM command's arguments hand to it on
// purpose are kept, whichever way the flag is spelt; other numbers, and
// what follows "--", are not.
func TestPassedFDs(t *testing.T) {
	t.Setenv(jailEnv, "")
	tests := []struct {
		args []string
		want []int
	}{
		{[]string{"smolvmm", "boot", "--ready-fd", "4", "--settled-fd", "5"}, []int{4, 5}},
		{[]string{"smolvmm", "boot", "--ready-fd=6", "-settled-fd", "7"}, []int{6, 7}},
		{[]string{"smolvmm", "run", "-m", "8", "--", "--ready-fd", "9"}, nil},
		{[]string{"smolvmm", "run", "--ready-fd"}, nil},
		{[]string{"smolvmm", "run", "ready-fd", "10"}, nil},
	}
	for _, tt := range tests {
		got := slices.Sorted(maps.Keys(passedFDs(tt.args)))
		if !slices.Equal(got, tt.want) {
			t.Errorf("passedFDs(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
	t.Setenv(jailEnv, "3")
	if got := passedFDs([]string{"smolvmm", "run"}); !got[3] || len(got) != 1 {
		t.Errorf("with %s=3, passedFDs = %v, want the tap's 3", jailEnv, got)
	}
}
