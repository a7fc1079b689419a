//go:build linux && amd64

package sandbox

import (
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
)

// ruleVerdict is what rules say of a call, read as a list: the first
// rule of the call's number decides (errno, allow, or allow when one of
// its condition sets holds); a call without a rule, another architecture
// or the x32 ABI is trapped.
func ruleVerdict(rules []rule, arch uint32, nr int, args []uint64) uint32 {
	if arch != auditArchX86_64 || uint32(nr) >= x32SyscallBit {
		return retTrap
	}
	for _, r := range rules {
		if r.nr != nr {
			continue
		}
		if len(r.any) == 0 {
			if r.errno != 0 {
				return retErrno | uint32(r.errno)
			}
			return retAllow
		}
		for _, set := range r.any {
			holds := true
			for _, c := range set {
				v := uint32(args[c.arg&^argHigh])
				if c.arg&argHigh != 0 {
					v = uint32(args[c.arg&^argHigh] >> 32)
				}
				switch c.op {
				case opEq:
					holds = holds && v == c.val
				case opNe:
					holds = holds && v != c.val
				case opSet:
					holds = holds && v&c.val != 0
				case opClear:
					holds = holds && v&c.val == 0
				case opType:
					holds = holds && v&^sockTypeFlags == c.val
				case opGe:
					holds = holds && v >= c.val
				}
			}
			if holds {
				return retAllow
			}
		}
		if r.errno != 0 {
			return retErrno | uint32(r.errno)
		}
		return retTrap
	}
	return retTrap
}

// argsFor returns argument lists that make each condition of rules hold
// or fail: for every condition set, one that satisfies it all and one
// for each condition that breaks only that one; and all zeros and all
// ones.
func argsFor(rules []rule) [][]uint64 {
	out := [][]uint64{make([]uint64, 6), {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}}
	holding := func(c cond) uint32 {
		switch c.op {
		case opEq:
			return c.val
		case opNe:
			return ^c.val
		case opSet:
			return c.val
		case opType:
			return c.val | sockTypeFlags
		case opGe:
			return c.val
		}
		return ^c.val // opClear
	}
	breaking := func(c cond) uint32 {
		switch c.op {
		case opEq:
			return c.val ^ 1
		case opNe:
			return c.val
		case opSet:
			return ^c.val
		case opType:
			return c.val ^ 1 | sockTypeFlags
		case opGe:
			return c.val - 1
		}
		return c.val // opClear
	}
	// put sets the half of args that c tests to v.
	put := func(args []uint64, c cond, v uint32) {
		n, shift := c.arg&^argHigh, 0
		if c.arg&argHigh != 0 {
			shift = 32
		}
		args[n] = args[n]&^(0xffffffff<<shift) | uint64(v)<<shift
	}
	for _, r := range rules {
		for _, set := range r.any {
			all := make([]uint64, 6)
			for i := range all {
				all[i] = 0xdead << 32 // a high half no condition tests is not read
			}
			for _, c := range set {
				put(all, c, holding(c))
			}
			out = append(out, all)
			for i, c := range set {
				one := append([]uint64(nil), all...)
				put(one, c, breaking(c))
				for j, d := range set {
					if j != i && d.arg == c.arg {
						one = nil // both on one half of an argument: no such list
					}
				}
				if one != nil {
					out = append(out, one)
				}
			}
		}
	}
	return out
}

// TestProgramIsTheRules: the assembled search tree gives every call the
// verdict of its rules read as a list, for every filter this package
// makes (sockets, Unix sockets, a rename directory, file times; openat
// trapped or refused quietly, read-only opens allowed), every number
// below 520 with arguments that make each condition, of either half of
// an argument, hold or fail, the other architecture and the x32 ABI.
func TestProgramIsTheRules(t *testing.T) {
	for _, tt := range []struct {
		f     Filter
		quiet bool
	}{
		{f: Filter{Ioctls: []uint64{kvmRun, 0x4040AE79, 0xAE81}}},
		{f: Filter{Ioctls: []uint64{kvmRun}, Sockets: true}},
		{f: Filter{Ioctls: []uint64{kvmRun}, UnixSockets: true, RenameDir: 7}},
		{f: Filter{Ioctls: []uint64{kvmRun}, Sockets: true, UnixSockets: true, RenameDir: 9}},
		{f: Filter{Ioctls: []uint64{kvmRun}, Sockets: true, RenameDir: 9}, quiet: true},
		{f: Filter{Ioctls: []uint64{kvmRun}, Truncate: true}},
		{f: Filter{Ioctls: []uint64{kvmRun}, Truncate: true, SetFileTimes: true}},
		{f: Filter{Ioctls: []uint64{kvmRun}, Sockets: true, ReadFiles: true, SetFileTimes: true}, quiet: true},
	} {
		f := tt.f
		t.Run(fmt.Sprintf("sockets=%v,unix=%v,renamedir=%d,truncate=%v,filetimes=%v,readfiles=%v,quiet=%v",
			f.Sockets, f.UnixSockets, f.RenameDir, f.Truncate, f.SetFileTimes, f.ReadFiles, tt.quiet), func(t *testing.T) {
			rules := f.rules(1234, tt.quiet)
			vm := rulesVM(t, rules)
			args := argsFor(rules)
			for _, arch := range []uint32{auditArchX86_64, 0x40000003} {
				for nr := 0; nr < 520; nr++ {
					for _, a := range args {
						got, err := vm.Run(seccompData(arch, nr, a...))
						if err != nil {
							t.Fatal(err)
						}
						if want := ruleVerdict(rules, arch, nr, a); uint32(got) != want {
							t.Fatalf("arch %#x call %d args %#x: verdict %#x, the rules say %#x", arch, nr, a, got, want)
						}
					}
				}
			}
			for _, nr := range []int{x32SyscallBit, x32SyscallBit | 16, x32SyscallBit | 202} {
				if got, _ := vm.Run(seccompData(auditArchX86_64, nr)); uint32(got) != retTrap {
					t.Errorf("x32 call %#x: verdict %#x, want a trap", nr, got)
				}
			}
		})
	}
}

// TestAssembleFarJumps: a filter whose search tree has halves longer than
// a conditional jump reaches is assembled with BPF_JA branches, and still
// gives the rules' verdicts.
func TestAssembleFarJumps(t *testing.T) {
	var rules []rule
	for nr := 0; nr < 300; nr++ {
		if nr%3 != 0 {
			continue
		}
		// A long block for each: 40 conditions.
		var any [][]cond
		for v := range 40 {
			any = append(any, []cond{{1, opEq, uint32(v)}})
		}
		rules = append(rules, rule{nr: nr, any: any})
	}
	if _, err := assembleTree(rules, false); err == nil {
		t.Fatal("direct branches over 255 instructions assembled")
	}
	vm := rulesVM(t, rules)
	for nr := 0; nr < 310; nr++ {
		for _, v := range []uint64{0, 39, 40} {
			a := []uint64{0, v, 0, 0, 0, 0}
			got, err := vm.Run(seccompData(auditArchX86_64, nr, a...))
			if err != nil {
				t.Fatal(err)
			}
			if want := ruleVerdict(rules, auditArchX86_64, nr, a); uint32(got) != want {
				t.Fatalf("call %d arg %d: verdict %#x, the rules say %#x", nr, v, got, want)
			}
		}
	}
}

// TestArgumentHalves: a condition set that starts on the other half of
// the argument the previous set's one test left in the accumulator
// loads that half: a test of the high half must not read the low one.
func TestArgumentHalves(t *testing.T) {
	rules := []rule{{nr: 280, any: [][]cond{{{1, opEq, 5}}, {{hi(1), opEq, 7}}, {{1, opEq, 9}}}}}
	vm := rulesVM(t, rules)
	for _, a1 := range []uint64{5, 7, 9, 7 << 32, 7<<32 | 7, 5<<32 | 9, 1 << 32} {
		a := []uint64{0, a1, 0, 0, 0, 0}
		got, err := vm.Run(seccompData(auditArchX86_64, 280, a...))
		if err != nil {
			t.Fatal(err)
		}
		if want := ruleVerdict(rules, auditArchX86_64, 280, a); uint32(got) != want {
			t.Errorf("argument %#x: verdict %#x, the rules say %#x", a1, got, want)
		}
	}
}

// rulesVM is the program assembled from rules in x/net/bpf's VM.
func rulesVM(t *testing.T, rules []rule) *bpf.VM {
	t.Helper()
	insts, err := assemble(rules)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}
