package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SchemaVersion names the JSON layout of Results; it changes whenever a
// field changes meaning or goes away. Fields may be added within a
// version (as executable_mapped was, within /1), left out when unset: a
// reader ignores fields it does not know, as ReadResults does.
const SchemaVersion = "smolvmm-bench/1"

// Results is the JSON document of a benchmark run. All times are
// milliseconds since the VMM's process was started; memory is in KiB.
//
//	{
//	  "schema": "smolvmm-bench/1",
//	  "date": "2026-11-26T06:30:00Z",
//	  "host": {"kernel": "6.1.0-...", "cpus": 2, "cpus_from": "affinity", "kvm": "usable"},
//	  "config": {"kernel": "demo", "append": "console=com root=ld0a", "memory_mib": 128,
//	             "boots": 20, "warmup": 2, "net": "user"},
//	  "systems": [{"name": "smolvmm", "command": [...],
//	               "boots": [{"phases_ms": {"first-output": 7.7, "guest-exit": 43, "exit": 63}, "status": 1}],
//	               "phases": [{"phase": "first-output", "n": 20, "min_ms": ..., "median_ms": ...,
//	                           "p95_ms": ..., "max_ms": ..., "mean_ms": ...}],
//	               "memory": {"sampled_at": "first-output", "settled": true, "rss_kib": ..., "guest_ram_kib": 131072,
//	                          "guest_rss_kib": ..., "guest_written_kib": ..., "guest_mapping_kib": 131204,
//	                          "overhead_kib": ..., "file_rss_kib": ...}}],
//	  "ratios": [{"system": "qemu-kvm", "baseline": "smolvmm", "phase": "first-output", "median_ratio": 4.2}]
//	}
//
// A demo boot's status is 1: its guest writes 0 to the debug-exit device,
// which ends the VMM with (0<<1)|1 (DebugExitSuccess).
//
// A guest that does not end by itself (a system at its login prompt) is
// stopped by the bench once it is ready: its boots have the phase
// "stopped" (when the bench sent SIGTERM) and no "guest-exit"; their
// "exit" (and smolvmm's "closed") time the stop, and the status is the
// process's after it (smolvmm: 130; -1 when it had to be killed). Such a
// boot ends at its ready event: "exit" is not compared in Ratios. Nor is
// "ready" of a QEMU system with a ready port (Config.ReadyAddr): QEMU's is
// a connection its forwarder holds, not the guest's accept (a note says so);
// nor "ready" where another event made it (Boot.ReadyBy: smolvmm's guest's
// boot-timer write, QEMU's ready line), a note says which.
type Results struct {
	// Schema is SchemaVersion.
	Schema string    `json:"schema"`
	Date   time.Time `json:"date"`   // when the run began
	Host   Host      `json:"host"`   // the machine it ran on
	Config Config    `json:"config"` // what each system booted
	// Systems come in the order they were run, smolvmm first.
	Systems []System `json:"systems"`
	// Ratios compare each other system's medians with the first system's.
	Ratios []Ratio `json:"ratios,omitempty"`
	// Notes say which asked-for systems were left out and why (QEMU not
	// installed, /dev/kvm unusable for QEMU).
	Notes []string `json:"notes,omitempty"`
}

// Host describes the machine the numbers come from.
type Host struct {
	Kernel string `json:"kernel"` // the host kernel's release, as uname gives it
	// CPUs is how many CPUs the bench's VMs can run on at once: the
	// fewer of those its affinity mask allows and a cgroup's CPU quota,
	// rounded up; CPUsFrom says which limit set it (CPUsAffinity,
	// CPUsCgroupQuota, or CPUsGiven for ParallelOptions.CPUs).
	CPUs     int    `json:"cpus"`
	CPUsFrom string `json:"cpus_from,omitempty"`
	// KVM says whether /dev/kvm could be opened, and if not why.
	KVM string `json:"kvm"`
}

// Config is what was booted and how.
type Config struct {
	Kernel    string   `json:"kernel"`               // the kernel image's path
	Disks     []string `json:"disks,omitempty"`      // the disks, as given
	Append    string   `json:"append"`               // the kernel's command line
	MemoryMiB int      `json:"memory_mib"`           // guest RAM in MiB
	Boots     int      `json:"boots"`                // timed boots per system
	Warmup    int      `json:"warmup"`               // untimed boots before them
	Ready     string   `json:"ready,omitempty"`      // the ready pattern, as given
	ReadyAddr string   `json:"ready_addr,omitempty"` // the ready address (Ready.Addr)
	// Net is the VMs' network, in netback.Open's form (user, user:NAME, tap:NAME, none).
	Net string `json:"net,omitempty"`
}

// System is one VMM's results.
type System struct {
	// Name is "smolvmm", "qemu-kvm" (qemu-system-i386 -enable-kvm) or
	// "qemu-tcg" (qemu-system-i386 without KVM).
	Name    string   `json:"name"`
	Command []string `json:"command"` // the command line that ran it
	// Error, when set, says why the system has no (or partial) results;
	// Boots then holds the boots that succeeded.
	Error string `json:"error,omitempty"`
	// Err is the error Error says, for errors.Is (ErrTimeout...); it is
	// not written to JSON, so Results read back have none.
	Err error `json:"-"`
	// Boots are the timed boots (warm-up boots are not kept).
	Boots []Boot `json:"boots"`
	// Phases summarise Boots, one entry per phase seen, in PhaseOrder.
	Phases []PhaseSummary `json:"phases"`
	// Memory is the one memory sample; MemoryError says why it is missing.
	Memory      *Memory `json:"memory,omitempty"`
	MemoryError string  `json:"memory_error,omitempty"`
	// NetworkMemory is the shared network's process that the system's
	// VMs join (Target.Network), read with Memory (PSSKiBPerVM: its PSS
	// shared out among the VMs joined then, or given to the one VM when
	// it did not say); NetworkMemoryError says why it is missing.
	NetworkMemory      *NetworkMemory `json:"network_memory,omitempty"`
	NetworkMemoryError string         `json:"network_memory_error,omitempty"`
}

// PhaseSummary is the Summary of one phase across a system's boots.
type PhaseSummary struct {
	Phase string `json:"phase"` // the phase's name (PhaseOrder)
	Summary
}

// Ratio is a system's median divided by the baseline's, for one phase;
// or, Phase "memory", its memory overhead divided by the baseline's: one
// sample each, not medians, compared only when both were taken at the
// same event (Memory.SampledAt, and for a ready Memory.ReadyBy; a
// restore's, at its first console byte after the restore or, when it
// printed nothing, at its report, is at its ready either way), else left
// out with a note.
type Ratio struct {
	System   string  `json:"system"`       // the system compared (System.Name)
	Baseline string  `json:"baseline"`     // the first system, compared with
	Phase    string  `json:"phase"`        // the phase, or "memory"
	Value    float64 `json:"median_ratio"` // System's figure divided by Baseline's
}

// Phase returns the system's summary of phase, if any boot reached it.
func (s *System) Phase(phase string) (Summary, bool) {
	for _, p := range s.Phases {
		if p.Phase == phase {
			return p.Summary, true
		}
	}
	return Summary{}, false
}

// summarize fills s.Phases from s.Boots.
func (s *System) summarize() {
	s.Phases = nil
	for _, p := range PhaseOrder {
		var v []float64
		for _, b := range s.Boots {
			if t, ok := b.Phases[p]; ok {
				v = append(v, t)
			}
		}
		if len(v) > 0 {
			s.Phases = append(s.Phases, PhaseSummary{Phase: p, Summary: Summarize(v)})
		}
	}
}

// ratioPhases are the phases every system has, compared in Ratios.
var ratioPhases = []string{PhaseFirstOutput, PhaseReady, PhaseExit}

// stoppedBoots counts the boots of s that the bench stopped at ready.
func (s *System) stoppedBoots() int {
	n := 0
	for i := range s.Boots {
		if s.Boots[i].Stopped() {
			n++
		}
	}
	return n
}

// computeRatios compares every system with the first one.
func (r *Results) computeRatios() {
	r.Ratios = nil
	if len(r.Systems) == 0 {
		return
	}
	base := &r.Systems[0]
	for i := 1; i < len(r.Systems); i++ {
		s := &r.Systems[i]
		for _, p := range ratioPhases {
			if p == PhaseExit && (s.stoppedBoots() > 0 || base.stoppedBoots() > 0) {
				continue // a stop's time, not the boot's
			}
			if p == PhaseReady && (r.portReadyQEMU(s, base) || !readyCompared(s, base)) {
				continue // not the same event (readyNotComparedNote)
			}
			a, ok1 := s.Phase(p)
			b, ok2 := base.Phase(p)
			if ok1 && ok2 && b.Median > 0 {
				r.Ratios = append(r.Ratios, Ratio{System: s.Name, Baseline: base.Name, Phase: p, Value: a.Median / b.Median})
			}
		}
		if s.Memory != nil && base.Memory != nil && base.Memory.OverheadKiB > 0 && memoryCompared(s.Memory, base.Memory) {
			r.Ratios = append(r.Ratios, Ratio{System: s.Name, Baseline: base.Name, Phase: "memory",
				Value: float64(s.Memory.OverheadKiB) / float64(base.Memory.OverheadKiB)})
		}
	}
}

// memoryCompared reports whether two memory samples were taken at the
// same event, so that their overheads compare: one at ready and one at
// the first console byte (QEMU's TCG, whose guest was gone before a
// sample at ready) are not. A restore's sample (GuestFile set) is taken at
// its first console byte after the restore (at its report when it
// printed nothing), once its guest has run, from a snapshot taken once
// ready: at its ready as much as at its output.
// Two samples at ready are at the same event when the same ready event
// made it: smolvmm's at its guest's boot-timer write is not QEMU's at the
// ready line the guest prints later.
func memoryCompared(a, b *Memory) bool {
	if a.GuestFile != "" || b.GuestFile != "" {
		return true
	}
	return a.SampledAt == b.SampledAt && (a.SampledAt != PhaseReady || a.ReadyBy == b.ReadyBy)
}

// sampledAtText names the event a memory sample was taken at, with the
// ready event that made a ready.
func sampledAtText(m *Memory) string {
	if m.SampledAt == PhaseReady && m.ReadyBy != "" {
		return m.SampledAt + " (" + readyByText(m.ReadyBy) + ")"
	}
	return m.SampledAt
}

// readyBy returns the ready event of s's boots (Boot.ReadyBy): the one
// they share, "" when none has one (results written before it was
// recorded), or several joined by "+" when they differ.
func readyBy(s *System) string {
	var seen []string
	for i := range s.Boots {
		if _, ok := s.Boots[i].Phases[PhaseReady]; !ok {
			continue
		}
		if by := s.Boots[i].ReadyBy; !slices.Contains(seen, by) {
			seen = append(seen, by)
		}
	}
	slices.Sort(seen)
	return strings.Join(seen, "+")
}

// readyCompared reports whether the ready phases of a and b are the same
// event in every boot: a ready at smolvmm's boot-timer write, which comes
// before the guest's ready line, is not QEMU's at that line. A restore's
// report stands for the ready its snapshot was taken at, and compares
// with any boot's ready.
func readyCompared(a, b *System) bool {
	ea, eb := readyBy(a), readyBy(b)
	if ea == ReadyByRestore || eb == ReadyByRestore {
		return true
	}
	return ea == eb && !strings.Contains(ea, "+")
}

// knownReadyBy reports whether by is one of the ReadyBy events.
func knownReadyBy(by string) bool {
	switch by {
	case ReadyByLine, ReadyByPort, ReadyByVMM, ReadyByRestore:
		return true
	}
	return false
}

// readyByText says what a ready event (Boot.ReadyBy, or several joined
// by "+") is.
func readyByText(by string) string {
	var parts []string
	for _, e := range strings.Split(by, "+") {
		switch e {
		case ReadyByLine:
			e = "its ready line"
		case ReadyByPort:
			e = "a connection to the ready port that held"
		case ReadyByVMM:
			e = "the VMM's own report (its guest's boot-timer port write, or accept on the ready port)"
		case ReadyByRestore:
			e = "its restore's report"
		case "":
			e = "an event not recorded"
		}
		parts = append(parts, e)
	}
	return strings.Join(parts, " or ")
}

// memoryNotComparedNote says which systems' memory is left out of the
// ratios, sampled at another event than the first system's, or "".
func (r *Results) memoryNotComparedNote() string {
	if len(r.Systems) < 2 || r.Systems[0].Memory == nil {
		return ""
	}
	base := r.Systems[0]
	var which []string
	for _, s := range r.Systems[1:] {
		if s.Memory != nil && !memoryCompared(s.Memory, base.Memory) {
			which = append(which, fmt.Sprintf("%s's at %s", s.Name, sampledAtText(s.Memory)))
		}
	}
	if len(which) == 0 {
		return ""
	}
	return fmt.Sprintf("memory is not compared where it was sampled at another event than %s's, at %s: %s",
		base.Name, sampledAtText(base.Memory), strings.Join(which, ", "))
}

// portReadyQEMU reports whether ready is a ready port's and one of a or
// b is a QEMU system: its ready is then a connection that held to the
// forward's host port, which QEMU's user network accepts and holds with
// nothing listening in the guest, not the guest's accept that smolvmm
// reports.
func (r *Results) portReadyQEMU(a, b *System) bool {
	return r.Config.ReadyAddr != "" && (isQEMU(a.Name) || isQEMU(b.Name))
}

// isQEMU reports whether a system's name is one of QEMUTargets'.
func isQEMU(name string) bool { return strings.HasPrefix(name, "qemu-") }

// readyNotComparedNote says why ready is left out of the ratios, or ""
// when it is not.
func (r *Results) readyNotComparedNote() string {
	if len(r.Systems) < 2 {
		return ""
	}
	base := &r.Systems[0]
	_, hasReady := base.Phase(PhaseReady)
	var names, other []string
	for i := 1; i < len(r.Systems); i++ {
		s := &r.Systems[i]
		if r.portReadyQEMU(s, base) {
			names = append(names, s.Name)
		} else if _, ok := s.Phase(PhaseReady); ok && hasReady && !readyCompared(s, base) {
			other = append(other, fmt.Sprintf("%s's is %s", s.Name, readyByText(readyBy(s))))
		}
	}
	var notes []string
	if len(names) > 0 {
		notes = append(notes, fmt.Sprintf("ready is not compared between %s and %s: QEMU's ready is a connection to %s that held, which its user network's forwarder accepts and holds even with nothing listening in the guest; %s's is the guest's own accept",
			base.Name, strings.Join(names, ", "), r.Config.ReadyAddr, base.Name))
	}
	if len(other) > 0 {
		notes = append(notes, fmt.Sprintf("ready is not compared where another event made it than %s's, %s: %s",
			base.Name, readyByText(readyBy(base)), strings.Join(other, ", ")))
	}
	return strings.Join(notes, "; ")
}

// WriteJSON writes r, indented.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadResults decodes a Results document, ignoring fields it does not
// know (added by a newer writer within SchemaVersion), and validates it.
func ReadResults(rd io.Reader) (*Results, error) {
	var r Results
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench results: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// ErrSchema is wrapped by every Validate error.
var ErrSchema = errors.New("bench results do not match the schema")

// Validate checks what the types cannot: the version, known and ordered
// phases, summaries that agree with the boots, and consistent memory.
func (r *Results) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSchema, fmt.Sprintf(format, args...))
	}
	if r.Schema != SchemaVersion {
		return bad("schema %q, want %q", r.Schema, SchemaVersion)
	}
	if r.Config.Boots < 1 || r.Config.Warmup < 0 || r.Config.MemoryMiB < 1 {
		return bad("config: boots %d, warmup %d, memory_mib %d", r.Config.Boots, r.Config.Warmup, r.Config.MemoryMiB)
	}
	if len(r.Systems) == 0 {
		return bad("no systems")
	}
	seen := map[string]bool{}
	for i, s := range r.Systems {
		if s.Name == "" || seen[s.Name] {
			return bad("systems[%d]: empty or repeated name %q", i, s.Name)
		}
		seen[s.Name] = true
		if len(s.Boots) == 0 && s.Error == "" {
			return bad("system %s: no boots and no error", s.Name)
		}
		if len(s.Boots) > r.Config.Boots {
			return bad("system %s: %d boots, config says %d", s.Name, len(s.Boots), r.Config.Boots)
		}
		for j, b := range s.Boots {
			if err := validateBoot(b); err != nil {
				return bad("system %s boot %d: %v", s.Name, j, err)
			}
		}
		check := s
		check.summarize()
		if len(check.Phases) != len(s.Phases) {
			return bad("system %s: %d phase summaries, the boots give %d", s.Name, len(s.Phases), len(check.Phases))
		}
		for j, p := range s.Phases {
			if p != check.Phases[j] {
				return bad("system %s: summary of %s is %+v, the boots give %+v", s.Name, p.Phase, p, check.Phases[j])
			}
		}
		if m := s.Memory; m != nil {
			if m.GuestRSSKiB > m.RSSKiB || m.OverheadKiB != m.RSSKiB-m.GuestRSSKiB || m.GuestRSSKiB > m.GuestMappingKiB || m.GuestMappingKiB < m.GuestRAMKiB || m.FileRSSKiB > m.OverheadKiB ||
				m.GuestWrittenKiB < 0 || m.GuestWrittenKiB > m.GuestRSSKiB {
				return bad("system %s: inconsistent memory %+v", s.Name, *m)
			}
			if m.SampledAt != PhaseReady && m.SampledAt != PhaseFirstOutput {
				return bad("system %s: memory sampled at %q", s.Name, m.SampledAt)
			}
			if m.ReadyBy != "" && (m.SampledAt != PhaseReady || !knownReadyBy(m.ReadyBy)) {
				return bad("system %s: memory sampled at %q made ready by %q", s.Name, m.SampledAt, m.ReadyBy)
			}
		}
		if m := s.NetworkMemory; m != nil {
			if s.NetworkMemoryError != "" || m.PID <= 0 || m.RSSKiB <= 0 || m.PSSKiB <= 0 || m.PSSKiB > m.RSSKiB || m.VMs < 0 || m.VMs > 0 && m.VMsError != "" ||
				m.PSSKiBPerVM != float64(m.PSSKiB)/float64(max(m.VMs, 1)) {
				return bad("system %s: network memory %+v (error %q) inconsistent", s.Name, *m, s.NetworkMemoryError)
			}
		}
	}
	for _, q := range r.Ratios {
		if !seen[q.System] || !seen[q.Baseline] || !(q.Value > 0) {
			return bad("ratio %+v", q)
		}
	}
	return nil
}

// restore reports whether b was a restore: Restored, or, in results
// written before that was recorded, ready by its restore's report.
func (b *Boot) restore() bool {
	return b.Restored || b.ReadyBy == ReadyByRestore
}

// validateBoot checks that a boot's phases are known, complete and ordered.
// A restore's boot may lack a first output, whatever made it ready (its
// report, its line, its ready port): its guest, snapshotted at its
// prompt, need print nothing. It is then ready, or it would have failed.
func validateBoot(b Boot) error {
	if _, ok := b.Phases[PhaseExit]; !ok {
		return fmt.Errorf("phase %s missing", PhaseExit)
	}
	if _, ok := b.Phases[PhaseFirstOutput]; !ok {
		if !b.restore() {
			return fmt.Errorf("phase %s missing", PhaseFirstOutput)
		}
		if _, ok := b.Phases[PhaseReady]; !ok {
			return fmt.Errorf("phases %s and %s missing from a restore", PhaseFirstOutput, PhaseReady)
		}
	}
	if b.ReadyBy != "" {
		if _, ok := b.Phases[PhaseReady]; !ok || !knownReadyBy(b.ReadyBy) {
			return fmt.Errorf("ready_by %q: an unknown event, or no phase %s", b.ReadyBy, PhaseReady)
		}
	}
	if b.Stopped() {
		// Stopped at its ready event: the guest did not exit.
		if _, ok := b.Phases[PhaseGuestExit]; ok {
			return fmt.Errorf("phases %s and %s: a stopped guest did not exit", PhaseStopped, PhaseGuestExit)
		}
		r, ok := b.Phases[PhaseReady]
		if !ok {
			return fmt.Errorf("phase %s without %s: the bench stops a guest once it is ready", PhaseStopped, PhaseReady)
		}
		if r > b.Phases[PhaseStopped] {
			return fmt.Errorf("ready at %.3f ms, after the stop at %.3f ms", r, b.Phases[PhaseStopped])
		}
	}
	last, lastName := 0.0, "process start"
	for name := range b.Phases {
		if !knownPhase(name) {
			return fmt.Errorf("unknown phase %q", name)
		}
	}
	for _, p := range PhaseOrder {
		t, ok := b.Phases[p]
		if !ok {
			continue
		}
		if t < 0 {
			return fmt.Errorf("%s at %.3f ms, before process start", p, t)
		}
		if p == PhaseSnapshotLoaded {
			// Read while the VM is created: before or after vm-created,
			// but before the state it holds is set.
			if r, ok := b.Phases[PhaseStateRestored]; ok && t > r {
				return fmt.Errorf("%s at %.3f ms, after %s at %.3f ms", p, t, PhaseStateRestored, r)
			}
			continue
		}
		if p == PhaseFirstOutput {
			// The bench's reading of the pipe, which lags the guest's
			// write: after the phases before it, but a loaded host can
			// deliver it after the VMM's own guest-exit or closed.
			if t < last {
				return fmt.Errorf("%s at %.3f ms is before %s at %.3f ms", p, t, lastName, last)
			}
			if t > b.Phases[PhaseExit] {
				return fmt.Errorf("%s at %.3f ms, after exit at %.3f ms", p, t, b.Phases[PhaseExit])
			}
			continue
		}
		if p == PhaseReady {
			if t > b.Phases[PhaseExit] {
				return fmt.Errorf("ready at %.3f ms, after exit at %.3f ms", t, b.Phases[PhaseExit])
			}
			continue
		}
		if t < last {
			return fmt.Errorf("%s at %.3f ms is before %s at %.3f ms", p, t, lastName, last)
		}
		last, lastName = t, p
	}
	return nil
}
