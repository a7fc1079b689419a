package vmm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestNativeHandoffGuest boots nbboot, a NetBSD-noted i386 kernel without a
// multiboot header that stays unpaged (so this machine's KVM runs it), with
// a module. The guest prints the six stack words and every bootinfo record
// byte it received; they must be exactly what the loader wrote, read back
// from guest memory as it was before the first instruction.
func TestNativeHandoffGuest(t *testing.T) {
	needKVM(t)
	kernel := guest(t, "nbboot")
	mod := elftest.Kmod(1, 5004)
	var out guests.Console
	m, err := vmm.New(vmm.Config{Kernel: kernel, MemoryMiB: 32, Append: "-s console=com root=ld0a",
		Modules: []multiboot.Module{{Name: "miniroot.kmod", Data: mod}}, Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	plan := m.Plan()
	if plan.Protocol != bootplan.NetBSD || plan.EAX != 0 || plan.EBX != 0 {
		t.Fatalf("plan %+v, want the native handoff with EAX and EBX 0", plan)
	}
	want, err := guests.NbbootLines(kernel, append([]byte(nil), m.Memory().Bytes()...), plan.ESP)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := m.Run(ctx)
	wantDebugExit(t, e, err, 0)
	if w := strings.Join(want, "\r\n") + "\r\n"; out.String() != w {
		t.Errorf("nbboot printed:\n%s\nwant:\n%s", out.String(), w)
	}
	// The comparison holds for any esym the loader writes; the
	// contract's is the end of everything loaded (docs/NETBSD-BOOT-NOTES.md,
	// the /boot handoff),
	// here the module's end.
	var modEnd uint64
	for _, r := range plan.Regions {
		if strings.HasPrefix(r.What, "module miniroot.kmod") && r.Len == uint64(len(mod)) {
			modEnd = r.Addr + r.Len
		}
	}
	if w := fmt.Sprintf(" esym=%#x extmem=", modEnd); modEnd == 0 || !strings.Contains(out.String(), w) {
		t.Errorf("nbboot did not get esym %#x, the end of the module of %d bytes (regions %v)", modEnd, len(mod), plan.Regions)
	}
}
