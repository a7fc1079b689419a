package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText prints r as tables: per system, min/median/p95/max of each
// phase and the memory; then the ratios to the first system.
func (r *Results) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s, %d boots after %d warm-up, %d MiB, ms since process start\n",
		r.Config.Kernel, r.Config.Boots, r.Config.Warmup, r.Config.MemoryMiB)
	for _, s := range r.Systems {
		fmt.Fprintf(tw, "\n%s\n", s.Name)
		if s.Error != "" {
			fmt.Fprintf(tw, "  error: %s\n", s.Error)
		}
		if len(s.Phases) > 0 {
			fmt.Fprintf(tw, "phase\tn\tmin\tmedian\tp95\tmax\t\n")
			for _, p := range s.Phases {
				fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t\n", p.Phase, p.N, p.Min, p.Median, p.P95, p.Max)
			}
		}
		if n := s.stoppedBoots(); n > 0 {
			fmt.Fprintf(tw, "%d of %d boots stopped at ready: the guest did not end by itself (stopped, closed and exit time the stop)\n", n, len(s.Boots))
		}
		// Said, or the missing first-output row (and ratio) reads as a
		// bench that lost it.
		if n := s.silentRestores(); n == len(s.Boots) && n > 0 {
			fmt.Fprintf(tw, "first output: none: the restored guest printed nothing after its ready report\n")
		} else if n > 0 {
			fmt.Fprintf(tw, "first output: none in %d of %d boots: the restored guest printed nothing after its ready report\n", n, len(s.Boots))
		}
		if m := s.Memory; m != nil && m.GuestFile != "" {
			fmt.Fprintf(tw, "memory at %s%s: RSS %.1f MiB, guest RAM (a private mapping of %s) mapped %.2f of %.0f MiB (the pages touched and those the kernel mapped around them from the page cache), %.2f MiB of it written (copied), VMM overhead %.2f MiB (%.2f MiB in files: executable, libraries)\n",
				m.SampledAt, settledText(m), kib2mib(m.RSSKiB), m.GuestFile, kib2mib(m.GuestRSSKiB), kib2mib(m.GuestRAMKiB), kib2mib(m.GuestWrittenKiB), kib2mib(m.OverheadKiB), kib2mib(m.FileRSSKiB))
		} else if m != nil {
			fmt.Fprintf(tw, "memory at %s%s: RSS %.1f MiB, guest RAM resident %.1f of %.0f MiB, VMM overhead %.2f MiB (%.2f MiB in files: executable, libraries)\n",
				m.SampledAt, settledText(m), kib2mib(m.RSSKiB), kib2mib(m.GuestRSSKiB), kib2mib(m.GuestRAMKiB), kib2mib(m.OverheadKiB), kib2mib(m.FileRSSKiB))
		} else if s.MemoryError != "" {
			fmt.Fprintf(tw, "memory: not measured: %s\n", s.MemoryError)
		}
		if m := s.NetworkMemory; m != nil && m.VMs > 0 {
			fmt.Fprintf(tw, "shared network %s (process %d): RSS %.2f MiB, PSS %.2f MiB, %.2f MiB per joined VM (%d joined)\n",
				r.Config.Net, m.PID, kib2mib(m.RSSKiB), kib2mib(m.PSSKiB), m.PSSKiBPerVM/1024, m.VMs)
		} else if m != nil {
			fmt.Fprintf(tw, "shared network %s (process %d): RSS %.2f MiB, PSS %.2f MiB, all of it this VM's (the network did not say how many were joined: %s)\n",
				r.Config.Net, m.PID, kib2mib(m.RSSKiB), kib2mib(m.PSSKiB), m.VMsError)
		} else if s.NetworkMemoryError != "" {
			fmt.Fprintf(tw, "shared network memory not read: %s\n", s.NetworkMemoryError)
		}
	}
	if r.restored() {
		// A restore beside a boot: their memory side by side.
		fmt.Fprintf(tw, "\nmemory (MiB)\tRSS\tguest mapped\tguest written\tVMM overhead\t\n")
		for _, s := range r.Systems {
			if m := s.Memory; m != nil {
				fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t\n", s.Name, kib2mib(m.RSSKiB), kib2mib(m.GuestRSSKiB), kib2mib(m.GuestWrittenKiB), kib2mib(m.OverheadKiB))
			}
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(tw, "\nratio of medians\n")
		for _, q := range r.Ratios {
			phase := q.Phase
			if phase == "memory" {
				phase = "memory (one sample each)"
			}
			fmt.Fprintf(tw, "%s / %s\t%s\t%.2fx\t\n", q.System, q.Baseline, phase, q.Value)
		}
	}
	for _, note := range []string{r.readyNotComparedNote(), r.memoryNotComparedNote()} {
		if note != "" {
			fmt.Fprintf(tw, "%s\n", note)
		}
	}
	return tw.Flush()
}

func kib2mib(k int64) float64 { return float64(k) / 1024 }

// silentRestores counts the boots of s that were restores and printed
// nothing, whatever made them ready: they have no first-output phase.
func (s *System) silentRestores() int {
	n := 0
	for i := range s.Boots {
		if _, ok := s.Boots[i].Phases[PhaseFirstOutput]; !ok && s.Boots[i].restore() {
			n++
		}
	}
	return n
}

// restored reports whether a system's memory was sampled after a restore:
// the report then shows every system's memory in one table.
func (r *Results) restored() bool {
	for _, s := range r.Systems {
		if s.Memory != nil && s.Memory.GuestFile != "" {
			return true
		}
	}
	return false
}

// settledText qualifies a memory sample's event when it was taken once the
// VM had settled: with its executable unmapped, or still mapped (its set-up
// code then counts in RSS) and why.
func settledText(m *Memory) string {
	switch {
	case m.ExecutableMapped && m.ExecutableMappedWhy != "":
		return ", executable still mapped (" + m.ExecutableMappedWhy + ")"
	case m.ExecutableMapped:
		return ", executable still mapped"
	case m.Settled:
		return ", once settled"
	}
	return ""
}
