package imagebuilder

import (
	"encoding/binary"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fatStamp is what a FAT32 directory entry records of its times.
type fatStamp struct {
	create, modify time.Time
	access         time.Time // a date only
}

// fatDate reads the FAT date d and time tm (as UTC, which data images
// write) without go-diskfs's help.
func fatDate(d, tm uint16) time.Time {
	return time.Date(int(d>>9)+1980, time.Month(d>>5&15), int(d&31), int(tm>>11), int(tm>>5&63), int(tm&31)*2, 0, time.UTC)
}

// fatStamps reads the times of every entry of the FAT32 image img, by
// path: "/sub/f", the dot entries as "/sub/." and "/sub/..", the volume
// label as "label".
func fatStamps(t *testing.T, img string) map[string]fatStamp {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := readFAT32(f)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	stamps := map[string]fatStamp{}
	var walk func(c uint32, dir string)
	walk = func(c uint32, dir string) {
		cs, err := v.chain(c)
		if err != nil {
			t.Fatal(err)
		}
		cb := v.spc * v.bps
		buf := make([]byte, int64(len(cs))*cb)
		for i, c := range cs {
			if _, err := f.ReadAt(buf[int64(i)*cb:int64(i+1)*cb], v.dataStart+int64(c-2)*cb); err != nil {
				t.Fatal(err)
			}
		}
		var lfn []int
		for i := 0; i+32 <= len(buf) && buf[i] != 0; i += 32 {
			e := buf[i : i+32]
			if e[0] == 0xe5 {
				lfn = nil
				continue
			}
			if e[11] == attrLFN {
				lfn = append(lfn, i)
				continue
			}
			name := strings.TrimRight(string(e[:8]), " ")
			if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
				name += "." + ext
			}
			if len(lfn) > 0 {
				name = longName(buf, lfn)
			}
			lfn = nil
			p := path.Join(dir, name)
			switch {
			case e[11]&attrVolumeID != 0:
				p = "label"
			case name == "." || name == "..":
				p = strings.TrimSuffix(dir, "/") + "/" + name
			}
			stamps[p] = fatStamp{
				create: fatDate(le.Uint16(e[16:]), le.Uint16(e[14:])),
				modify: fatDate(le.Uint16(e[24:]), le.Uint16(e[22:])),
				access: fatDate(le.Uint16(e[18:]), 0),
			}
			if e[11]&attrDir != 0 && name != "." && name != ".." {
				walk(entryCluster(e), p)
			}
		}
	}
	walk(v.root, "/")
	return stamps
}

// TestFATTimesSourceDateEpochZero: go-diskfs reads SOURCE_DATE_EPOCH
// itself, and stored a time before 1980 (SOURCE_DATE_EPOCH=0) with its
// year wrapped: every entry of a FAT32 data image (mkimg --data, run
// --share) was dated 2098-01-01. The build sets every time itself, within
// FAT's range, whatever the environment holds.
func TestFATTimesSourceDateEpochZero(t *testing.T) {
	for _, epoch := range []string{"0", "315532799", "-1"} {
		t.Run(epoch, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", epoch)
			dir := t.TempDir()
			for _, p := range []string{"sub/deep", "sub/f", "top"} {
				if err := os.MkdirAll(filepath.Join(dir, "sub", "deep"), 0o755); err != nil {
					t.Fatal(err)
				}
				if p != "sub/deep" {
					if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			img := filepath.Join(t.TempDir(), "d.img")
			from := time.Now().UTC().Truncate(24 * time.Hour)
			if err := BuildDataImage(dir, img, DataFAT32); err != nil {
				t.Fatal(err)
			}
			to := time.Now().UTC().Add(2 * time.Second)
			stamps := fatStamps(t, img)
			for _, p := range []string{"label", "/sub", "/sub/.", "/sub/..", "/sub/deep", "/sub/deep/.", "/sub/deep/..", "/sub/f", "/top"} {
				s, ok := stamps[p]
				if !ok {
					t.Errorf("%s: no entry", p)
					continue
				}
				for what, tm := range map[string]time.Time{"created": s.create, "modified": s.modify, "accessed": s.access} {
					if tm.Before(from) || tm.After(to) {
						t.Errorf("%s %s %v, want the time of the build (%v to %v)", p, what, tm, from, to)
					}
				}
			}
		})
	}
}
