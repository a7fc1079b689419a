package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ParallelSchemaVersion names the JSON layout of ParallelResults; as
// SchemaVersion, it changes when a field changes meaning or goes away,
// not when one is added (as executable_mapped was, within /1): a reader
// ignores fields it does not know, as ReadParallelResults does.
const ParallelSchemaVersion = "smolvmm-bench-parallel/1"

// ParallelResults is the JSON document of a benchmark that starts N VMs
// at once. Times are milliseconds since the bench started its first VM's
// process; memory is in KiB.
//
//	{
//	  "schema": "smolvmm-bench-parallel/1",
//	  "date": "...", "host": {...}, "config": {...},
//	  "system": "smolvmm", "command": [...],
//	  "n": 10, "started": 10, "failed": 0,
//	  "all_ready_ms": 180.5, "starts_per_sec": 55.4, "starts_per_sec_per_core": 27.7,
//	  "start_latency": {"n": 10, "min_ms": ..., "median_ms": ..., ...},
//	  "memory": {"n": 10, "rss_kib_mean": ..., "pss_kib_mean": ..., "pss_kib_total": ...,
//	             "overhead_rss_kib_mean": ..., "overhead_pss_kib_mean": ...,
//	             "overhead_pss_kib_max": ..., "executable_mapped": 2,
//	             "executable_mapped_why": "..."},
//	  "network_memory": {"pid": 4242, "rss_kib": ..., "pss_kib": ..., "vms": 12, "pss_kib_per_vm": ...},
//	  "vms": [{"index": 0, "start_ms": 0.4, "first_output_ms": 12.1, "ready_ms": 12.1,
//	           "memory": {"rss_kib": ..., "pss_kib": ..., ..., "executable_mapped": true,
//	                      "executable_mapped_why": "..."}}, {"index": 7, "error": "..."}]
//	}
type ParallelResults struct {
	// Schema is ParallelSchemaVersion.
	Schema string    `json:"schema"`
	Date   time.Time `json:"date"` // when the run began
	// Host.CPUs is the core count the per-core rate divides by, and
	// Host.CPUsFrom the limit that set it.
	Host   Host   `json:"host"`
	Config Config `json:"config"` // what each VM booted
	// System and Command are the VMM started N times.
	System  string   `json:"system"`
	Command []string `json:"command"`
	// N VMs were asked for; Started reached their ready event and were
	// still there when measured, Failed did not (their VM.Error says
	// why): Started + Failed == N.
	N       int `json:"n"`
	Started int `json:"started"`
	Failed  int `json:"failed"`
	// AllReadyMS is when the last started VM became ready (0 when none
	// did). StartsPerSec is Started / AllReadyMS, and StartsPerSecPerCore
	// that divided by Host.CPUs.
	AllReadyMS          float64 `json:"all_ready_ms"`
	StartsPerSec        float64 `json:"starts_per_sec"`
	StartsPerSecPerCore float64 `json:"starts_per_sec_per_core"`
	// StartLatency summarises each started VM's ReadyMS - StartMS.
	StartLatency Summary `json:"start_latency"`
	// Memory summarises the VMs whose memory was read.
	Memory *ParallelMemory `json:"memory,omitempty"`
	// NetworkMemory is the shared network's process (smolvmm net), when
	// the VMs joined one, read while they were connected;
	// NetworkMemoryError says why it is missing.
	NetworkMemory      *NetworkMemory `json:"network_memory,omitempty"`
	NetworkMemoryError string         `json:"network_memory_error,omitempty"`
	// VMs are in start order (index).
	VMs []VM `json:"vms"`
}

// NetworkMemory is the memory of the shared network's process.
type NetworkMemory struct {
	PID    int   `json:"pid"`     // the network's process
	RSSKiB int64 `json:"rss_kib"` // its resident set, KiB
	PSSKiB int64 `json:"pss_kib"` // its proportional set, KiB
	// VMs is how many VMs were joined to the network when its memory was
	// read, as it said (this bench's and any other's); 0 when it did not
	// say, and VMsError says why.
	VMs      int    `json:"vms,omitempty"`
	VMsError string `json:"vms_error,omitempty"`
	// PSSKiBPerVM is PSSKiB shared out among the VMs joined (VMs), or,
	// when the network did not say, among the started VMs (0 when none
	// started): what each VM's network costs on top of its own PSS.
	PSSKiBPerVM float64 `json:"pss_kib_per_vm"`
}

// VM is one VM of a parallel start.
type VM struct {
	Index int `json:"index"` // the VM's place in start order, from 0
	// StartMS is when its process was started, FirstOutputMS its first
	// console byte, ReadyMS its ready event (the first console byte, or
	// the ready line, or the ready the VMM reported, not before its first
	// console byte); absent when not reached. A restore that printed
	// nothing for a second after its VMM's ready report (a service at its
	// prompt) started at the report: ReadyMS without FirstOutputMS.
	StartMS       float64 `json:"start_ms,omitempty"`
	FirstOutputMS float64 `json:"first_output_ms,omitempty"`
	ReadyMS       float64 `json:"ready_ms,omitempty"`
	// Error says why the VM did not start: also one that reached its
	// ready event (ReadyMS stays) but whose process ended by itself
	// before the bench measured it, as it did not run with the others
	// ("exit status 2 after its first console byte, before the bench
	// measured it: " and its standard error).
	Error string `json:"error,omitempty"`
	// Limit names the host resource the VM found used up, when the
	// bench knows it (from an errno, the OOM killer's kill, or the VM's
	// own standard error): "" for a VM that started or failed otherwise.
	Limit Limit `json:"limit,omitempty"`
	// Memory is read while every started VM is alive; MemoryError says
	// why it is missing.
	Memory      *VMMemory `json:"memory,omitempty"`
	MemoryError string    `json:"memory_error,omitempty"`
}

// Limit is a resource of the host whose exhaustion kept a VM from
// starting.
type Limit string

const (
	// LimitFileDescriptors is the bench's open files, at RLIMIT_NOFILE
	// or the system's (EMFILE, ENFILE; EBADF from a child that cannot
	// move its descriptors into place past the limit).
	LimitFileDescriptors Limit = "file_descriptors"
	// LimitTasks is the processes and threads a task limit allows
	// (RLIMIT_NPROC, kernel.threads-max, kernel.pid_max or a cgroup's
	// pids.max): fork's EAGAIN, or a VM whose runtime could create no
	// thread.
	LimitTasks Limit = "tasks"
	// LimitMemory is the host's or the memory cgroup's memory: ENOMEM, or
	// the OOM killer's kill, known or most likely.
	LimitMemory Limit = "memory"
)

// Started reports whether the VM reached its ready event and was still
// there to be measured.
func (v VM) Started() bool { return v.Error == "" }

// VMMemory is one VM process's memory.
type VMMemory struct {
	// RSSKiB and PSSKiB are the process's whole resident and proportional
	// set sizes (smaps_rollup); PSSAnonKiB and PSSFileKiB split PSSKiB.
	RSSKiB     int64 `json:"rss_kib"`
	PSSKiB     int64 `json:"pss_kib"`
	PSSAnonKiB int64 `json:"pss_anon_kib"`
	PSSFileKiB int64 `json:"pss_file_kib"`
	// GuestRSSKiB and GuestPSSKiB are the guest RAM mapping's.
	GuestRSSKiB int64 `json:"guest_rss_kib"`
	GuestPSSKiB int64 `json:"guest_pss_kib"`
	// OverheadRSSKiB and OverheadPSSKiB leave the guest RAM out: the
	// VMM's own cost.
	OverheadRSSKiB int64 `json:"overhead_rss_kib"`
	OverheadPSSKiB int64 `json:"overhead_pss_kib"`
	// Unsettled says that the VM had not settled (its Target.SettledFlag
	// byte) when it was read: it may still have mapped what it unmaps
	// then, the executable's set-up code above all. Such VMs are left
	// out of ParallelMemory's figures.
	Unsettled bool `json:"unsettled,omitempty"`
	// ExecutableMapped says that the VM settled without unmapping its
	// executable's set-up code, which then counts in its RSS and PSS;
	// ExecutableMappedWhy is why, when it said (Target.SettledFlag's
	// SettledMapped).
	ExecutableMapped    bool   `json:"executable_mapped,omitempty"`
	ExecutableMappedWhy string `json:"executable_mapped_why,omitempty"`
}

// ParallelMemory summarises the memory of a parallel start's VMs.
type ParallelMemory struct {
	// N VMs had their memory read once settled; the figures are theirs.
	N int `json:"n"`
	// Unsettled VMs were read before they had settled, and are left out.
	Unsettled int `json:"unsettled,omitempty"`
	// ExecutableMapped of the N VMs settled with their executable still
	// mapped (VMMemory.ExecutableMapped): their figures count its set-up
	// code. ExecutableMappedWhy lists their reasons, each once, in VM
	// order, separated by "; ".
	ExecutableMapped    int    `json:"executable_mapped,omitempty"`
	ExecutableMappedWhy string `json:"executable_mapped_why,omitempty"`
	// RSSKiBMean, PSSKiBMean and PSSKiBTotal are the N VMs' resident
	// and proportional set sizes, in KiB; OverheadRSSKiBMean and
	// OverheadPSSKiBMean the same without their guest RAM (VMMemory's
	// OverheadRSSKiB and OverheadPSSKiB), OverheadPSSKiBMax the largest.
	RSSKiBMean         float64 `json:"rss_kib_mean"`
	PSSKiBMean         float64 `json:"pss_kib_mean"`
	PSSKiBTotal        int64   `json:"pss_kib_total"`
	OverheadRSSKiBMean float64 `json:"overhead_rss_kib_mean"`
	OverheadPSSKiBMean float64 `json:"overhead_pss_kib_mean"`
	OverheadPSSKiBMax  int64   `json:"overhead_pss_kib_max"`
}

// aggregate fills the counts, rates and summaries from r.VMs.
func (r *ParallelResults) aggregate() {
	r.N, r.Started, r.Failed, r.AllReadyMS = len(r.VMs), 0, 0, 0
	r.StartsPerSec, r.StartsPerSecPerCore, r.Memory = 0, 0, nil
	var lat []float64
	var mem ParallelMemory
	var rss, pss, orss, opss int64
	var whys []string
	for _, v := range r.VMs {
		if !v.Started() {
			r.Failed++
			continue
		}
		r.Started++
		lat = append(lat, v.ReadyMS-v.StartMS)
		r.AllReadyMS = max(r.AllReadyMS, v.ReadyMS)
		if m := v.Memory; m != nil && m.Unsettled {
			mem.Unsettled++
		} else if m != nil {
			mem.N++
			if m.ExecutableMapped {
				mem.ExecutableMapped++
				if m.ExecutableMappedWhy != "" && !slices.Contains(whys, m.ExecutableMappedWhy) {
					whys = append(whys, m.ExecutableMappedWhy)
				}
			}
			rss += m.RSSKiB
			pss += m.PSSKiB
			orss += m.OverheadRSSKiB
			opss += m.OverheadPSSKiB
			mem.OverheadPSSKiBMax = max(mem.OverheadPSSKiBMax, m.OverheadPSSKiB)
		}
	}
	r.StartLatency = Summarize(lat)
	if r.Started > 0 && r.AllReadyMS > 0 {
		r.StartsPerSec = float64(r.Started) / (r.AllReadyMS / 1000)
		if r.Host.CPUs > 0 {
			r.StartsPerSecPerCore = r.StartsPerSec / float64(r.Host.CPUs)
		}
	}
	if m := r.NetworkMemory; m != nil {
		m.PSSKiBPerVM = 0
		switch {
		case m.VMs > 0:
			m.PSSKiBPerVM = float64(m.PSSKiB) / float64(m.VMs)
		case r.Started > 0:
			m.PSSKiBPerVM = float64(m.PSSKiB) / float64(r.Started)
		}
	}
	if mem.N > 0 {
		n := float64(mem.N)
		mem.RSSKiBMean, mem.PSSKiBMean, mem.PSSKiBTotal = float64(rss)/n, float64(pss)/n, pss
		mem.OverheadRSSKiBMean, mem.OverheadPSSKiBMean = float64(orss)/n, float64(opss)/n
	}
	mem.ExecutableMappedWhy = strings.Join(whys, "; ")
	if mem.N > 0 || mem.Unsettled > 0 {
		r.Memory = &mem
	}
}

// startedSilent counts the started VMs without a first output: restores
// started at their ready report, having printed nothing.
func (r *ParallelResults) startedSilent() int {
	n := 0
	for _, v := range r.VMs {
		if v.Started() && v.FirstOutputMS == 0 {
			n++
		}
	}
	return n
}

// WriteJSON writes r, indented.
func (r *ParallelResults) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadParallelResults decodes a ParallelResults document, ignoring fields
// it does not know (added by a newer writer within ParallelSchemaVersion),
// and validates it.
func ReadParallelResults(rd io.Reader) (*ParallelResults, error) {
	var r ParallelResults
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench parallel results: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the version, that the counts and summaries agree with
// the VMs, that every VM either started or says why not, that every
// started VM has its memory or says why not, and that each
// memory sample is consistent (PSS at most RSS, guest at most the whole).
func (r *ParallelResults) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSchema, fmt.Sprintf(format, args...))
	}
	if r.Schema != ParallelSchemaVersion {
		return bad("schema %q, want %q", r.Schema, ParallelSchemaVersion)
	}
	if r.N < 1 || len(r.VMs) != r.N {
		return bad("n %d with %d vms", r.N, len(r.VMs))
	}
	for i, v := range r.VMs {
		if v.Index != i {
			return bad("vms[%d] has index %d", i, v.Index)
		}
		// A restore started at its ready report, having printed nothing
		// (a service at its prompt), has no first output.
		if v.Started() && !(v.ReadyMS >= v.StartMS && v.ReadyMS > 0 && v.FirstOutputMS >= 0 && v.FirstOutputMS <= v.ReadyMS) {
			return bad("vm %d: start %.3f, first output %.3f, ready %.3f ms out of order", i, v.StartMS, v.FirstOutputMS, v.ReadyMS)
		}
		if v.Started() && v.Limit != "" {
			return bad("vm %d: started, yet found no %s", i, v.Limit)
		}
		if !v.Started() && v.Memory != nil {
			return bad("vm %d: not started, yet has memory", i)
		}
		// Every started VM is measured: it has a figure or says why not.
		if v.Started() && (v.Memory == nil) == (v.MemoryError == "") {
			return bad("vm %d: started, with memory %v and memory error %q: want one of them", i, v.Memory != nil, v.MemoryError)
		}
		if m := v.Memory; m != nil {
			if m.Unsettled && m.ExecutableMapped || m.ExecutableMappedWhy != "" && !m.ExecutableMapped {
				return bad("vm %d: executable mapped %v (why %q) with unsettled %v", i, m.ExecutableMapped, m.ExecutableMappedWhy, m.Unsettled)
			}
			if m.PSSKiB > m.RSSKiB || m.RSSKiB <= 0 || m.PSSKiB <= 0 || m.GuestRSSKiB > m.RSSKiB || m.GuestPSSKiB > m.PSSKiB ||
				m.OverheadRSSKiB != m.RSSKiB-m.GuestRSSKiB || m.OverheadPSSKiB != m.PSSKiB-m.GuestPSSKiB {
				return bad("vm %d: inconsistent memory %+v", i, *m)
			}
		}
	}
	check := *r
	if r.NetworkMemory != nil {
		c := *r.NetworkMemory // aggregate sets its share per VM
		check.NetworkMemory = &c
	}
	check.aggregate()
	if check.Started != r.Started || check.Failed != r.Failed || check.AllReadyMS != r.AllReadyMS ||
		check.StartsPerSec != r.StartsPerSec || check.StartsPerSecPerCore != r.StartsPerSecPerCore || check.StartLatency != r.StartLatency {
		return bad("counts or rates disagree with the vms: started %d failed %d all-ready %.3f rate %.3f, the vms give %d %d %.3f %.3f",
			r.Started, r.Failed, r.AllReadyMS, r.StartsPerSec, check.Started, check.Failed, check.AllReadyMS, check.StartsPerSec)
	}
	if (check.Memory == nil) != (r.Memory == nil) || (r.Memory != nil && *r.Memory != *check.Memory) {
		return bad("memory summary %+v disagrees with the vms' %+v", r.Memory, check.Memory)
	}
	if m := r.NetworkMemory; m != nil {
		if r.NetworkMemoryError != "" || m.PID <= 0 || m.RSSKiB <= 0 || m.PSSKiB <= 0 || m.PSSKiB > m.RSSKiB || m.VMs < 0 || m.VMs > 0 && m.VMsError != "" {
			return bad("network memory %+v (error %q) inconsistent", *m, r.NetworkMemoryError)
		}
		if c := check.NetworkMemory; c.PSSKiBPerVM != m.PSSKiBPerVM {
			return bad("network PSS per VM %.3f KiB, the VMs give %.3f", m.PSSKiBPerVM, c.PSSKiBPerVM)
		}
	}
	return nil
}

// WriteText prints the counts, rates, start latencies, how many VMs
// started without output, memory, and why each VM that failed did.
func (r *ParallelResults) WriteText(w io.Writer) error {
	// The first write error is the report's: later lines would only
	// fail the same way.
	var werr error
	p := func(format string, args ...any) {
		if werr == nil {
			_, werr = fmt.Fprintf(w, format, args...)
		}
	}
	p("%s: %d VMs started at once, %d MiB each (%s)\n", r.Config.Kernel, r.N, r.Config.MemoryMiB, r.System)
	if r.Started == 0 {
		// No time nor rate to give: zeros would read as measurements.
		p("started 0, failed %d: none started\n", r.Failed)
	} else {
		p("started %d, failed %d; all ready after %.1f ms: %.1f starts/s, %.1f per core (%s)\n",
			r.Started, r.Failed, r.AllReadyMS, r.StartsPerSec, r.StartsPerSecPerCore, cpusText(r.Host))
	}
	if s := r.StartLatency; s.N > 0 {
		p("each VM, process start to ready: min %.1f, median %.1f, p95 %.1f, max %.1f ms\n", s.Min, s.Median, s.P95, s.Max)
	}
	if n := r.startedSilent(); n > 0 {
		p("%d VMs printed nothing: started at their ready report (a restored guest at its prompt)\n", n)
	}
	if m := r.Memory; m != nil && m.N > 0 {
		p("memory per VM (%d read, all running): RSS %.2f MiB, PSS %.2f MiB (%.1f MiB for all);\n", m.N,
			m.RSSKiBMean/1024, m.PSSKiBMean/1024, kib2mib(m.PSSKiBTotal))
		p("  without guest RAM: RSS %.2f MiB, PSS %.2f MiB (max %.2f MiB)\n", m.OverheadRSSKiBMean/1024, m.OverheadPSSKiBMean/1024, kib2mib(m.OverheadPSSKiBMax))
	}
	if m := r.Memory; m != nil && m.ExecutableMapped > 0 {
		why := ""
		if m.ExecutableMappedWhy != "" {
			why = " (" + m.ExecutableMappedWhy + ")"
		}
		p("%d VMs settled with their executable still mapped%s: their set-up code counts in the memory figures\n", m.ExecutableMapped, why)
	}
	if m := r.Memory; m != nil && m.Unsettled > 0 {
		p("%d VMs read before they had settled (still mapping their set-up code): left out of the memory figures\n", m.Unsettled)
	}
	if m := r.NetworkMemory; m != nil {
		if m.VMs > 0 {
			p("shared network %s (process %d): RSS %.2f MiB, PSS %.2f MiB, %.2f MiB per joined VM (%d joined)\n",
				r.Config.Net, m.PID, kib2mib(m.RSSKiB), kib2mib(m.PSSKiB), m.PSSKiBPerVM/1024, m.VMs)
		} else {
			p("shared network %s (process %d): RSS %.2f MiB, PSS %.2f MiB, %.2f MiB per VM this bench started (the network did not say how many were joined: %s)\n",
				r.Config.Net, m.PID, kib2mib(m.RSSKiB), kib2mib(m.PSSKiB), m.PSSKiBPerVM/1024, m.VMsError)
		}
	}
	if r.NetworkMemoryError != "" {
		p("shared network memory not read: %s\n", r.NetworkMemoryError)
	}
	shown := 0
	for _, v := range r.VMs {
		switch {
		case v.Error != "" && shown < 10:
			p("vm %d: %s\n", v.Index, v.Error)
			shown++
		case v.Error != "":
			shown++
		case v.MemoryError != "":
			p("vm %d: memory not read: %s\n", v.Index, v.MemoryError)
		}
	}
	if shown > 10 {
		p("... and %d more failed\n", shown-10)
	}
	return werr
}
