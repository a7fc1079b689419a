package imagebuilder

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Africa/Monrovia, whatever the machine has

	"github.com/smolvmm/smolvmm/imagebuilder/internal/hostdir"
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
			// Read before the files are written: the access date has a
			// day's resolution, so a day ending in between would put
			// the files' times before it.
			from := time.Now().UTC().Truncate(24 * time.Hour)
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

// timedTree writes a directory holding sub/, sub/f and top, each with
// the modification time given.
func timedTree(t *testing.T, times map[string]time.Time) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sub/f", "top"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"sub/f", "top", "sub"} { // sub last: making f moved it
		// Not os.Chtimes, which on a 32-bit host cuts a time past 2038.
		ts := hostdir.Timespec{Sec: times[p].Unix(), Nsec: int64(times[p].Nanosecond())}
		if err := hostdir.Lutimes(filepath.Join(dir, p), ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDataImageReproducible: data images were dated by the build: every
// FAT32 entry carried the build's time (or SOURCE_DATE_EPOCH's, read by
// go-diskfs), every ISO 9660 record its work copy's, in the builder's
// time zone, and the volume descriptor the build's time to the
// hundredth of a second, so no two builds were alike. The same directory
// with the same times and DataOptions.Time gives the same bytes, whatever
// SOURCE_DATE_EPOCH and the time zone, a zone whose offset is not whole
// quarter hours too: ISO 9660 records were written from go-diskfs's local
// times, whose offset it cuts to quarter hours, and the minutes cut were
// lost (Africa/Monrovia, -0:44:30 until 1972, dated a file of 1970-01-01
// 00:00:01 UTC 1969-12-31 23:45:31).
func TestDataImageReproducible(t *testing.T) {
	dir := timedTree(t, map[string]time.Time{
		"sub":   time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC),
		"sub/f": time.Date(2011, 12, 13, 14, 15, 16, 700, time.UTC),
		"top":   time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
	})
	// A time many reproducible trees give every file (Nix's is 1).
	nix := time.Unix(1, 0).UTC()
	if err := os.WriteFile(filepath.Join(dir, "nix.txt"), []byte("nix"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "nix.txt"), nix, nix); err != nil {
		t.Fatal(err)
	}
	monrovia, err := time.LoadLocation("Africa/Monrovia")
	if err != nil {
		t.Fatal(err)
	}
	if _, off := nix.In(monrovia).Zone(); off != -(44*60 + 30) {
		t.Fatalf("Africa/Monrovia's offset in 1970: %d s, want -2670 (-0:44:30)", off)
	}
	vol := time.Unix(1700000000, 0)
	builds := []struct {
		epoch string
		zone  *time.Location
	}{
		{"1000000000", time.UTC},
		{"", time.FixedZone("IST", 5*3600+1800)},
		{"0", time.FixedZone("HST", -10*3600)},
		{"", time.FixedZone("MMT", -(44*60 + 30))},
		{"", monrovia},
	}
	defer func(l *time.Location) { time.Local = l }(time.Local)
	for _, fsType := range []string{DataFAT32, DataISO9660} {
		t.Run(fsType, func(t *testing.T) {
			var first []byte
			for i, b := range builds {
				t.Setenv("SOURCE_DATE_EPOCH", b.epoch)
				time.Local = b.zone
				img := filepath.Join(t.TempDir(), "d.img")
				err := BuildDataImageOptions(context.Background(), dir, img, fsType, 0, DataOptions{Force: true, Time: vol})
				time.Local = time.UTC
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}
				if fsType == DataISO9660 {
					ts := isoStamps(t, got)["/NIX.TXT;1"]
					if len(ts) != 4 {
						t.Errorf("build %d (zone %v): NIX.TXT;1 times %v, want a record date and three Rock Ridge times", i, b.zone, ts)
					}
					for _, tm := range ts {
						if !tm.Equal(nix) {
							t.Errorf("build %d (zone %v): NIX.TXT;1 dated %v, want %v", i, b.zone, tm, nix)
						}
					}
				}
				if i == 0 {
					first = got
					continue
				}
				if !bytes.Equal(got, first) {
					n, at := 0, -1
					for j := range min(len(got), len(first)) {
						if got[j] != first[j] {
							n++
							if at < 0 {
								at = j
							}
						}
					}
					t.Errorf("build %d (SOURCE_DATE_EPOCH %q, zone %v) differs from build 0: %d and %d bytes, %d differ, the first at byte %d", i, b.epoch, b.zone, len(got), len(first), n, at)
				}
			}
		})
	}
}

// isoStamps reads, for the root directory of the ISO 9660 image img and
// the directory SUB in it, each record's date and its Rock Ridge times
// (modification, access, attribute change), by path ("/." the root's
// own record, "/SUB/F.;1"); each time must be in UTC (offset 0).
func isoStamps(t *testing.T, img []byte) map[string][]time.Time {
	t.Helper()
	const bs = 2048
	le := binary.LittleEndian
	date := func(b []byte) time.Time {
		if b[6] != 0 {
			t.Errorf("date % x: offset %d, want 0 (UTC)", b, int8(b[6]))
		}
		return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, time.UTC)
	}
	stamps := map[string][]time.Time{}
	var read func(loc int64, dir string)
	read = func(loc int64, dir string) {
		b := img[loc*bs : (loc+1)*bs]
		for i := 0; i < len(b) && b[i] != 0; i += int(b[i]) {
			rec := b[i : i+int(b[i])]
			nl := int(rec[32])
			name := string(rec[33 : 33+nl])
			switch {
			case nl == 1 && rec[33] == 0:
				name = "."
			case nl == 1 && rec[33] == 1:
				name = ".."
			}
			p := dir + "/" + name
			ts := []time.Time{date(rec[18:25])}
			sua := rec[33+nl+(nl+1)%2:]
			for j := 0; j+4 <= len(sua) && sua[j+2] >= 4 && j+int(sua[j+2]) <= len(sua); j += int(sua[j+2]) {
				if e := sua[j : j+int(sua[j+2])]; string(e[:2]) == "TF" {
					if e[4] != 2|4|8 {
						t.Errorf("%s: TF flags %#x, want modification, access and attribute change, short form", p, e[4])
						continue
					}
					for k := 5; k+7 <= len(e); k += 7 {
						ts = append(ts, date(e[k:k+7]))
					}
				}
			}
			stamps[p] = ts
			if name == "SUB" {
				read(int64(le.Uint32(rec[2:])), p)
			}
		}
	}
	read(int64(le.Uint32(img[16*bs+156+2:])), "")
	return stamps
}

// TestDataImageTimes: every entry of a data image carried the build's
// time, not its host file's: the image did not hold the directory's own
// times. Each entry carries its host file's or directory's modification
// time, the root and the volume DataOptions.Time, each in UTC and within
// what the file system stores (FAT32 1980 to 2107, ISO 9660 1900 to
// 2155); the ISO 9660 volume descriptor's expiration and effective dates
// are "not specified" (the build's time made the volume expire as it was
// made).
func TestDataImageTimes(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		name         string
		vol, f, top  time.Time
		fatF, fatTop time.Time // FAT32: two-second times, 1980 to 2107
		fatVol       time.Time
		isoF, isoTop time.Time // ISO 9660: 1900-01-02 to 2155-12-30 (clampISOTime); a host file system keeps none before 1901
	}{
		{"in range", utc(2023, 11, 14, 22, 13, 20), utc(2011, 12, 13, 14, 15, 17), utc(1999, 12, 31, 23, 59, 59),
			utc(2011, 12, 13, 14, 15, 16), utc(1999, 12, 31, 23, 59, 58), utc(2023, 11, 14, 22, 13, 20),
			utc(2011, 12, 13, 14, 15, 17), utc(1999, 12, 31, 23, 59, 59)},
		{"before 1980", utc(1850, 1, 1, 0, 0, 0), utc(1975, 6, 7, 8, 9, 10), utc(1905, 1, 1, 0, 0, 0),
			utc(1980, 1, 1, 0, 0, 0), utc(1980, 1, 1, 0, 0, 0), utc(1980, 1, 1, 0, 0, 0),
			utc(1975, 6, 7, 8, 9, 10), utc(1905, 1, 1, 0, 0, 0)},
		{"volume 1970", time.Unix(0, 0), utc(2011, 12, 13, 14, 15, 17), utc(1999, 12, 31, 23, 59, 59),
			utc(2011, 12, 13, 14, 15, 16), utc(1999, 12, 31, 23, 59, 58), utc(1980, 1, 1, 0, 0, 0),
			utc(2011, 12, 13, 14, 15, 17), utc(1999, 12, 31, 23, 59, 59)},
		{"after 2107", utc(2200, 1, 1, 0, 0, 0), utc(2120, 1, 2, 3, 4, 5), utc(2250, 1, 1, 0, 0, 0),
			utc(2107, 12, 31, 23, 59, 58), utc(2107, 12, 31, 23, 59, 58), utc(2107, 12, 31, 23, 59, 58),
			utc(2120, 1, 2, 3, 4, 5), utc(2155, 12, 30, 23, 59, 59)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := utc(2001, 2, 3, 4, 5, 6)
			dir := timedTree(t, map[string]time.Time{"sub": sub, "sub/f": tt.f, "top": tt.top})
			opts := DataOptions{Force: true, Time: tt.vol}

			img := filepath.Join(t.TempDir(), "d.img")
			if err := BuildDataImageOptions(context.Background(), dir, img, DataFAT32, 0, opts); err != nil {
				t.Fatal(err)
			}
			stamps := fatStamps(t, img)
			for p, want := range map[string]time.Time{"label": tt.fatVol, "/sub": sub, "/sub/.": sub, "/sub/..": tt.fatVol, "/sub/f": tt.fatF, "/top": tt.fatTop} {
				s := stamps[p]
				day := time.Date(want.Year(), want.Month(), want.Day(), 0, 0, 0, 0, time.UTC)
				if !s.modify.Equal(want) || !s.create.Equal(want) || !s.access.Equal(day) {
					t.Errorf("FAT32 %s: modified %v, created %v, accessed %v; want %v, %v, %v", p, s.modify, s.create, s.access, want, want, day)
				}
			}

			iso := filepath.Join(t.TempDir(), "d.iso")
			if err := BuildDataImageOptions(context.Background(), dir, iso, DataISO9660, 0, opts); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(iso)
			if err != nil {
				t.Fatal(err)
			}
			isoVol := clampISOTime(tt.vol)
			got := isoStamps(t, b)
			for p, want := range map[string]time.Time{"/.": isoVol, "/..": isoVol, "/SUB": sub, "/SUB/.": sub, "/SUB/..": isoVol, "/SUB/F.;1": tt.isoF, "/TOP.;1": tt.isoTop} {
				ts := got[p]
				if len(ts) != 4 {
					t.Errorf("ISO 9660 %s: times %v, want a record date and three Rock Ridge times (records: %v)", p, ts, got)
					continue
				}
				for i, what := range []string{"record date", "modified", "accessed", "attributes changed"} {
					if !ts[i].Equal(want) {
						t.Errorf("ISO 9660 %s %s %v, want %v", p, what, ts[i], want)
					}
				}
			}
			pvd := b[16*2048:]
			wantDate := isoVol.Format("20060102150405") + "00\x00"
			for _, d := range []struct {
				name string
				at   int
				want string
			}{{"creation", 813, wantDate}, {"modification", 830, wantDate}, {"expiration", 847, "0000000000000000\x00"}, {"effective", 864, "0000000000000000\x00"}} {
				if g := string(pvd[d.at : d.at+17]); g != d.want {
					t.Errorf("volume descriptor %s date %q, want %q", d.name, g, d.want)
				}
			}
		})
	}
}
