package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Rollup is a process's /proc/PID/smaps_rollup: the sums over all its
// mappings, computed by the kernel in one pass.
type Rollup struct {
	// RSSKiB counts every resident page once per process; PSSKiB divides
	// each page by the number of processes that map it, so the PSS of
	// several processes adds up to the memory they use together.
	RSSKiB, PSSKiB int64
	// PSSAnonKiB and PSSFileKiB split PSSKiB into anonymous memory (heap,
	// stacks, guest RAM) and file pages (the executable); zero on kernels
	// older than 5.7, which do not report them.
	PSSAnonKiB, PSSFileKiB int64
}

// ParseRollup reads the smaps_rollup format: one "[rollup]" header line
// and "Key: value kB" lines. Rss and Pss must be present.
func ParseRollup(r io.Reader) (Rollup, error) {
	var ro Rollup
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		key, ok := strings.CutSuffix(fields[0], ":")
		if !ok {
			if line == 1 {
				continue // the header: address range, perms, "[rollup]"
			}
			return Rollup{}, fmt.Errorf("smaps_rollup line %d: %q is not a Key: value line", line, sc.Text())
		}
		var dst *int64
		switch key {
		case "Rss":
			dst = &ro.RSSKiB
		case "Pss":
			dst = &ro.PSSKiB
		case "Pss_Anon":
			dst = &ro.PSSAnonKiB
		case "Pss_File":
			dst = &ro.PSSFileKiB
		default:
			continue
		}
		if len(fields) < 2 {
			return Rollup{}, fmt.Errorf("smaps_rollup line %d: %s has no value", line, key)
		}
		kib, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || kib < 0 {
			return Rollup{}, fmt.Errorf("smaps_rollup line %d: %s %q: not a size in kB", line, key, fields[1])
		}
		*dst = kib
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return Rollup{}, fmt.Errorf("smaps_rollup line %d: %w", line+1, err)
	}
	for _, k := range []string{"Rss", "Pss"} {
		if !seen[k] {
			return Rollup{}, fmt.Errorf("smaps_rollup has no %s line (%d lines read)", k, line)
		}
	}
	if ro.PSSKiB > ro.RSSKiB {
		return Rollup{}, fmt.Errorf("smaps_rollup: Pss %d kB above Rss %d kB", ro.PSSKiB, ro.RSSKiB)
	}
	return ro, nil
}

// ReadRollup reads /proc/PID/smaps_rollup.
func ReadRollup(pid int) (Rollup, error) {
	f, err := openProc(pid, "smaps_rollup")
	if err != nil {
		return Rollup{}, err
	}
	defer f.Close()
	ro, err := ParseRollup(f)
	if err != nil {
		return Rollup{}, fmt.Errorf("/proc/%d/%w", pid, gone(err))
	}
	return ro, nil
}

// guestMapping returns the resident and proportional size of the guest RAM
// mapping in /proc/PID/smaps (found as Overhead finds it, as OverheadAt
// does at addr when it is not 0, or as RestoredOverhead does when
// guestFile is set).
func guestMapping(pid int, guestBytes uint64, guestFile string, addr uint64) (rss, pss int64, err error) {
	maps, err := readSmaps(pid)
	if err != nil {
		return 0, 0, err
	}
	i, err := findGuest(maps, guestBytes, guestFile, addr)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/smaps: %w", pid, err)
	}
	return maps[i].RSSKiB, maps[i].PSSKiB, nil
}
