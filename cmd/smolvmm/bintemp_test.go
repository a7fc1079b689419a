package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// binTempsHeld are the directories binTempDir made, each held locked
// (shared) until the test binary ends, however it ends: a run killed by
// its -timeout, a panic or a signal never reaches TestMain's removal, and
// its 25 MiB binary stayed in the temporary directory.
var (
	binTempsMu   sync.Mutex
	binTempsHeld []*os.File
)

// The prefixes binTempDir is given start "smolvmm-testbin-": a run of an
// older checkout made "smolvmm-cli" and the like without a lock, which a
// sweep would take for a dead run's.

// binTempSweepAge spares a directory another run has just made and not
// locked yet.
const binTempSweepAge = time.Minute

// binTempDir makes a directory for a copy of the smolvmm binary in the
// temporary directory, named prefix and a random suffix, after removing
// the ones earlier runs left: those no live run holds locked.
func binTempDir(prefix string) (string, error) {
	sweepBinTemps(os.TempDir(), prefix, time.Now().Add(-binTempSweepAge))
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	f, err := os.Open(dir)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(dir)
		return "", err
	}
	binTempsMu.Lock()
	binTempsHeld = append(binTempsHeld, f)
	binTempsMu.Unlock()
	return dir, nil
}

// sweepBinTemps removes parent's directories named prefix and digits
// (MkdirTemp's), this user's, last changed before before, that no process
// holds locked.
func sweepBinTemps(parent, prefix string, before time.Time) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		if !e.IsDir() || !ok || suffix == "" || strings.Trim(suffix, "0123456789") != "" {
			continue // MkdirTemp's suffix is digits
		}
		dir := filepath.Join(parent, e.Name())
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Uid == uint32(os.Geteuid()) &&
			time.Unix(st.Mtim.Unix()).Before(before) &&
			unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
