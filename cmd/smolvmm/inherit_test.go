package main

import (
	"maps"
	"slices"
	"testing"
)

// TestPassedFDs: the descriptors handed to a VM command on purpose are
// kept, whichever way the flag is spelt: bench boot's --ready-fd and
// --settled-fd, and jailEnv's tap in the jailed VMM (PID 1, --jail). The
// same words as another flag's value (a guest's command line), in a
// command without those flags, after "--", or in arguments the command
// refuses keep nothing; nor does jailEnv outside the jailed VMM. run kept
// fd 5 for -a "--ready-fd=5", and SMOLVMM_JAILED=6 kept fd 6 without
// --jail.
func TestPassedFDs(t *testing.T) {
	boot := []string{"smolvmm", "bench", "boot", "--report", "r"}
	tests := []struct {
		name       string
		args       []string
		jailEnv    string
		benchChild bool
		pid1       bool
		want       []int
	}{
		{"boot", append(boot, "--ready-fd", "4", "--settled-fd", "5"), "", true, false, []int{4, 5}},
		{"boot spellings", append(boot, "--ready-fd=6", "-settled-fd", "7"), "", true, false, []int{6, 7}},
		{"boot, a value", append(boot, "-a", "--ready-fd=5"), "", true, false, nil},
		{"boot outside the bench", append(boot, "--ready-fd", "4"), "", false, false, nil},
		{"boot refused", append(boot, "--ready-fd", "4", "--nonsense"), "", true, false, nil},
		{"run, a value", []string{"smolvmm", "run", "-a", "--ready-fd=5"}, "", false, false, nil},
		{"run, a flag it lacks", []string{"smolvmm", "run", "--ready-fd=5"}, "", false, false, nil},
		{"run after --", []string{"smolvmm", "run", "-m", "8", "--", "--ready-fd", "9"}, "", false, false, nil},
		{"run, no value", []string{"smolvmm", "run", "--ready-fd"}, "", false, false, nil},
		{"run, a word", []string{"smolvmm", "run", "ready-fd", "10"}, "", false, false, nil},
		{"jailed run", []string{"smolvmm", "run", "--jail"}, "3", false, true, []int{3}},
		{"jailed up's run", []string{"smolvmm", "run", "--kernel", "k", "--jail=true"}, "3", false, true, []int{3}},
		{"jailed boot", append(boot, "--jail", "--ready-fd", "4"), "3", true, true, []int{3, 4}},
		{"jailed, no tap", []string{"smolvmm", "run", "--jail"}, "-", false, true, nil},
		{"jailEnv, not PID 1", []string{"smolvmm", "run", "--jail"}, "6", false, false, nil},
		{"jailEnv, no --jail", []string{"smolvmm", "run"}, "6", false, true, nil},
		{"jailEnv, --jail a value", []string{"smolvmm", "run", "-a", "--jail"}, "6", false, true, nil},
		{"jailEnv, --jail=false", []string{"smolvmm", "demo", "--jail=false"}, "6", false, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(jailEnv, tt.jailEnv)
			child := ""
			if tt.benchChild {
				child = "1"
			}
			t.Setenv(benchChildEnv, child)
			got := slices.Sorted(maps.Keys(passedFDs(tt.args, tt.pid1)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("passedFDs(%q, PID 1 %v) = %v, want %v", tt.args, tt.pid1, got, tt.want)
			}
		})
	}
}
