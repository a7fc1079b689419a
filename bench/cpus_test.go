package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCgroupCPUQuota: the per-core rate divides by the CPUs the bench can
// use at once: its affinity's, fewer under a cgroup CPU quota that allows
// less (rounded up), the smallest quota of the cgroup and its ancestors,
// cgroup v2 or v1; and says which limit set it. (It once divided by the
// affinity's CPUs alone, runtime.NumCPU, whatever the quota.)
func TestCgroupCPUQuota(t *testing.T) {
	tests := []struct {
		name     string
		self     string            // /proc/self/cgroup
		files    map[string]string // under the cgroupfs root
		affinity int
		quota    float64
		cpus     int
		from     string
	}{
		{"v2, no quota", "0::/a/b\n", map[string]string{"a/b/cpu.max": "max 100000\n"}, 8, 0, 8, CPUsAffinity},
		{"v2, 1.5 CPUs of 8", "0::/a/b\n", map[string]string{"a/b/cpu.max": "150000 100000\n"}, 8, 1.5, 2, CPUsCgroupQuota},
		{"v2, a parent's is smaller", "0::/a/b\n", map[string]string{"a/b/cpu.max": "400000 100000\n", "a/cpu.max": "50000 100000\n"}, 8, 0.5, 1, CPUsCgroupQuota},
		{"v2, quota above the affinity", "0::/a\n", map[string]string{"a/cpu.max": "800000 100000\n"}, 2, 8, 2, CPUsAffinity},
		{"v2, at the namespace's root", "0::/\n", map[string]string{"cpu.max": "300000 100000\n"}, 4, 3, 3, CPUsCgroupQuota},
		{"v1", "2:cpuacct,cpu:/c\n1:memory:/c\n", map[string]string{"cpu,cpuacct/c/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/c/cpu.cfs_period_us": "100000\n"}, 16, 2, 2, CPUsCgroupQuota},
		{"v1, no quota", "2:cpu,cpuacct:/c\n", map[string]string{"cpu,cpuacct/c/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/c/cpu.cfs_period_us": "100000\n"}, 16, 0, 16, CPUsAffinity},
		{"garbage", "0::/a\n", map[string]string{"a/cpu.max": "lots\n"}, 4, 0, 4, CPUsAffinity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "cgroup")
			for name, text := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			self := filepath.Join(dir, "self-cgroup")
			if err := os.WriteFile(self, []byte(tt.self), 0o644); err != nil {
				t.Fatal(err)
			}
			quota, err := readCgroupCPUQuota(self, root)
			if err != nil || quota != tt.quota {
				t.Fatalf("quota %v (%v), want %v", quota, err, tt.quota)
			}
			cpus, from := cpuLimit(tt.affinity, quota)
			if cpus != tt.cpus || from != tt.from {
				t.Errorf("%d CPUs (%s), want %d (%s)", cpus, from, tt.cpus, tt.from)
			}
		})
	}
}

// The parallel results say which limit the per-core rate divided by, and
// one core in the singular.
func TestParallelTextSaysCPULimit(t *testing.T) {
	tests := []struct {
		cpus int
		from string
		want string
	}{
		{2, CPUsCgroupQuota, "5.0 per core (2 cores: cgroup quota)"},
		{1, CPUsCgroupQuota, "5.0 per core (1 core: cgroup quota)"},
		{1, "", "5.0 per core (1 core)"},
	}
	for _, tt := range tests {
		r := &ParallelResults{Host: Host{CPUs: tt.cpus, CPUsFrom: tt.from}, Config: Config{Kernel: "k"}, N: 1, Started: 1, AllReadyMS: 100,
			StartsPerSec: 10, StartsPerSecPerCore: 5}
		var out strings.Builder
		if err := r.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("%d CPUs (%s): text lacks %q:\n%s", tt.cpus, tt.from, tt.want, out.String())
		}
	}
}
