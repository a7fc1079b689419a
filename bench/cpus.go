package bench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// CPU limits a Host.CPUsFrom names.
const (
	// CPUsAffinity: the CPUs the bench's affinity mask lets it run on
	// (runtime.NumCPU).
	CPUsAffinity = "affinity"
	// CPUsCgroupQuota: a cgroup's CPU bandwidth quota (cgroup v2 cpu.max,
	// v1 cpu.cfs_quota_us over cpu.cfs_period_us), below the affinity,
	// rounded up to whole CPUs.
	CPUsCgroupQuota = "cgroup quota"
	// CPUsGiven: ParallelOptions.CPUs, set by the caller.
	CPUsGiven = "given"
)

// hostCPUs is how many CPUs the bench's VMs can run on at once and which
// limit sets it: the affinity mask's CPUs, fewer when a cgroup's CPU quota
// allows less (the time a cgroup may run per period counts, not the CPUs
// it may run on: a quota of 1.5 CPUs on 8 lets 2 run at a time, at most).
func hostCPUs() (int, string) {
	quota, _ := readCgroupCPUQuota("/proc/self/cgroup", "/sys/fs/cgroup")
	return cpuLimit(runtime.NumCPU(), quota)
}

// cpuLimit is min(affinity, ceil(quota)) and the limit that set it; quota
// is in CPUs, 0 for none.
func cpuLimit(affinity int, quota float64) (int, string) {
	if quota > 0 {
		if q := int(math.Ceil(quota)); q < affinity {
			return q, CPUsCgroupQuota
		}
	}
	return affinity, CPUsAffinity
}

// readCgroupCPUQuota reads the CPU quota (in CPUs; 0: none) of the cgroup
// that selfCgroup (/proc/self/cgroup) names, below root (where cgroupfs is
// mounted): the smallest of its own and its ancestors', as the kernel
// enforces each. Version 2 (cpu.max) and version 1 (the cpu controller's
// cpu.cfs_quota_us and cpu.cfs_period_us, under root/cpu or
// root/cpu,cpuacct) are read.
func readCgroupCPUQuota(selfCgroup, root string) (float64, error) {
	f, err := os.Open(selfCgroup)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	least := 0.0
	take := func(q float64) {
		if q > 0 && (least == 0 || q < least) {
			least = q
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			take(walkCgroup(root, parts[2], readCPUMax))
		case hasController(parts[1], "cpu"):
			for _, dir := range []string{"cpu", "cpu,cpuacct", "cpuacct,cpu"} {
				if _, err := os.Stat(filepath.Join(root, dir)); err == nil {
					take(walkCgroup(filepath.Join(root, dir), parts[2], readCFSQuota))
					break
				}
			}
		}
	}
	return least, sc.Err()
}

func hasController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

// walkCgroup applies read to the cgroup directory of path under root and
// to each of its ancestors up to root, and returns the smallest quota
// found (0: none). A path outside root's view (a cgroup namespace's
// parent) is cut at root.
func walkCgroup(root, path string, read func(dir string) float64) float64 {
	least := 0.0
	p := filepath.Clean("/" + path)
	for {
		if q := read(filepath.Join(root, p)); q > 0 && (least == 0 || q < least) {
			least = q
		}
		if p == "/" {
			return least
		}
		p = filepath.Dir(p)
	}
}

// readCPUMax reads a cgroup v2 cpu.max, "QUOTA PERIOD" or "max PERIOD".
func readCPUMax(dir string) float64 {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	return quotaOf(f[0], f[1])
}

// readCFSQuota reads a cgroup v1 cpu.cfs_quota_us (-1: none) over
// cpu.cfs_period_us.
func readCFSQuota(dir string) float64 {
	q, err1 := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0
	}
	return quotaOf(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

// quotaOf is quota/period in CPUs, 0 when either is not a positive number.
func quotaOf(quota, period string) float64 {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return float64(q) / float64(p)
}

// cpusText says how many cores a rate was divided by and which limit set
// that number.
func cpusText(h Host) string {
	cores := fmt.Sprintf("%d cores", h.CPUs)
	if h.CPUs == 1 {
		cores = "1 core"
	}
	if h.CPUsFrom == "" {
		return cores
	}
	return cores + ": " + h.CPUsFrom
}
