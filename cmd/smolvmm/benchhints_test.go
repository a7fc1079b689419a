package main

import (
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
)

// The shared network's refusal for want of descriptors points at the
// network's limit, not the bench's; a VM the OOM killer took (or most
// likely took) gets the memory advice, one it is known not to have taken
// none.
func TestParallelHintsNetworkAndOOM(t *testing.T) {
	const (
		benchFDs = "some VMs found no file descriptor: raise the limit (ulimit -n) or give a smaller --parallel"
		netFDs   = "the shared network ran out of file descriptors for some VMs: raise the limit of open files where smolvmm net runs (LimitNOFILE= in its systemd unit, or ulimit -n before it) and start it again, or give a smaller --parallel"
		memory   = "some VMs found no memory: give them less guest RAM (-m) or a smaller --parallel"
	)
	refused := "exit status 1 before its first console byte: smolvmm bench: shared network /run/smolvmm/net.sock refused the VM: network out of file descriptors: the network's process has every file descriptor open that RLIMIT_NOFILE 64 allows (60 VMs joined) (raise the limit of open files where smolvmm net runs: LimitNOFILE= in its systemd unit, or ulimit -n before it; or join fewer VMs)"
	type vm struct {
		err   string
		limit bench.Limit
	}
	tests := []struct {
		name string
		vms  []vm
		want []string
	}{
		{"network refused", []vm{{refused, ""}, {}}, []string{netFDs}},
		{"network refused and bench out", []vm{{refused, ""}, {"console pipe: too many open files (out of file descriptors: RLIMIT_NOFILE is 64)", bench.LimitFileDescriptors}}, []string{benchFDs, netFDs}},
		{"OOM killer", []vm{{"killed by the kernel's OOM killer before its first console byte", bench.LimitMemory}}, []string{memory}},
		{"most likely the OOM killer", []vm{{"killed by SIGKILL from outside the bench (most likely the kernel's OOM killer, which takes VMs first) after its first console byte, before the bench measured it", bench.LimitMemory}}, []string{memory}},
		{"not the OOM killer", []vm{{"killed by SIGKILL from another process (not the OOM killer: the bench's memory cgroup counted no kill) before its first console byte", ""}}, nil},
		{"another signal", []vm{{"signal: terminated before its first console byte", ""}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &bench.ParallelResults{}
			for i, v := range tt.vms {
				res.VMs = append(res.VMs, bench.VM{Index: i, Error: v.err, Limit: v.limit})
			}
			if got := parallelHints(res); !slices.Equal(got, tt.want) {
				t.Errorf("hints %q, want %q", got, tt.want)
			}
		})
	}
}
