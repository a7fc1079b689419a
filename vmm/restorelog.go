package vmm

import (
	"fmt"
	"strings"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// logRestore is a restore's line for Verbose, as logPlan is a boot's: the
// snapshot file, its memory mapped copy-on-write, the boot protocol it
// recorded and the disk images checked against it.
func (m *Machine) logRestore(path string, st *machineState) {
	var b strings.Builder
	fmt.Fprintf(&b, "restored %s: %d MiB of guest memory mapped copy-on-write, ", path, st.MemoryMiB)
	fmt.Fprintf(&b, "boot protocol %s", st.Protocol) // one checkState accepts
	if len(m.cfg.Disks) == 0 {
		b.WriteString(", no disks")
	}
	for i, d := range m.cfg.Disks {
		ro := ""
		if d.ReadOnly {
			ro = " (read-only)"
		}
		if i < len(m.diskCopies) && m.diskCopies[i] {
			fmt.Fprintf(&b, ", ld%d %s%s with the content the snapshot saw (another file, compared by its CRC-32C)", i, d.Path, ro)
			continue
		}
		fmt.Fprintf(&b, ", ld%d %s%s as the snapshot saw it", i, d.Path, ro)
	}
	// The paths are the user's and the snapshot's, any bytes: escaped
	// as the device log's are, a newline or an escape sequence in one
	// cannot forge a line or act on the terminal.
	m.logf("%s", termsafe.Line(b.String()))
}
