package main

import (
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
)

// A VM the OOM killer took (or most likely took) gets the memory advice.
func TestParallelHintsNetworkAndOOM(t *testing.T) {
	const (
		memory = "some VMs found no memory: give them less guest RAM (-m) or a smaller --parallel"
	)
	tests := []struct {
		name string
		errs []string
		want []string
	}{
		{"OOM killer", []string{"killed by the kernel's OOM killer before its first console byte"}, []string{memory}},
		{"most likely the OOM killer", []string{"killed by SIGKILL from outside the bench (most likely the kernel's OOM killer, which takes VMs first) after its first console byte, before the bench measured it"}, []string{memory}},
		{"another signal", []string{"signal: terminated before its first console byte"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &bench.ParallelResults{}
			for i, e := range tt.errs {
				res.VMs = append(res.VMs, bench.VM{Index: i, Error: e})
			}
			if got := parallelHints(res); !slices.Equal(got, tt.want) {
				t.Errorf("hints %q, want %q", got, tt.want)
			}
		})
	}
}
