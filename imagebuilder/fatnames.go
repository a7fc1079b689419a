package imagebuilder

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fatDir is one directory of a FAT32 data image as go-diskfs v1.9.4 fills
// it: the names it stores for each host name added, in the order added.
// add says, before any image is written, when go-diskfs would not store a
// name as given: it would change the name, fail on it, lose a file to
// another (its lookup takes a new name equal, ignoring case, to an earlier
// long or short name for that file, and overwrites it), or write a short
// name that fixShortNames cannot mend, having no long name to keep.
type fatDir struct {
	hostDir string // the host directory, for messages
	entries []fatEntry
}

// fatEntry is what go-diskfs stores for one host name.
type fatEntry struct {
	host  string // the host name
	long  string // the long (VFAT) name, "" for none
	stem  string // the 8.3 short name, upper case, without the dot
	ext   string
	short string // stem.ext, as go-diskfs matches it
	label bool   // the volume label's entry, in the root
}

// newFATDir is the model of the empty directory hostDir; the root (root
// true) holds the volume label's entry from the start.
func newFATDir(hostDir string, root bool) fatDir {
	d := fatDir{hostDir: hostDir}
	if root {
		d.entries = append(d.entries, fatEntry{stem: DataLabel, short: DataLabel, label: true})
	}
	return d
}

// FATNameError is the error for a name in a data directory that a FAT32
// data image cannot hold as it is (Other empty), or for two names in one
// directory it cannot hold both of. An ISO 9660 image holds either.
type FATNameError struct {
	Path  string // host path of the name refused
	Other string // host path of the name it would clash with, or ""
	Why   string // why: "differ only in case", "its name holds ..."
}

// Error names the file or files and says why.
func (e *FATNameError) Error() string {
	if e.Other != "" {
		return fmt.Sprintf("%s and %s %s: a FAT32 image cannot hold both (an ISO 9660 image can)", e.Other, e.Path, e.Why)
	}
	return fmt.Sprintf("%s: %s: a FAT32 image cannot hold the name as it is (an ISO 9660 image can)", e.Path, e.Why)
}

// add checks host, the next name go-diskfs is to create in the
// directory, and records what it will store.
func (d *fatDir) add(host string) error {
	hp := joinHost(d.hostDir, host)
	if why := fatNameProblem(host); why != "" {
		return &FATNameError{Path: hp, Why: why}
	}
	for _, e := range d.entries {
		switch {
		case e.label:
			// go-diskfs's file lookup does not pass over the label:
			// it would write the file's data to the label's entry,
			// which has no cluster ("invalid start cluster: 0").
			if strings.EqualFold(e.short, host) {
				return &FATNameError{Path: hp, Why: "its name is the FAT32 volume label's (" + e.short + "), whose entry go-diskfs would take for the file"}
			}
		case strings.EqualFold(e.host, host):
			return &FATNameError{Path: hp, Other: joinHost(d.hostDir, e.host), Why: "differ only in case, which FAT32 names ignore"}
		case strings.EqualFold(e.long, host) || strings.EqualFold(e.short, host):
			return &FATNameError{Path: hp, Other: joinHost(d.hostDir, e.host), Why: "are one name on FAT32 (the first's short name is " + e.short + ")"}
		}
	}
	e := fatEntry{host: host}
	stem, ext, hasLong, truncated := fatShortName(host)
	// Checked before go-diskfs's cut of a long stem at byte 6, so that a
	// character the cut splits is named, not the broken byte left.
	for i, r := range stem + "." + ext {
		if truncated && i >= 6 && i < len(stem) {
			continue // cut off
		}
		if r > 0xff {
			return &FATNameError{Path: hp, Why: fmt.Sprintf("its short name would hold %q (U+%04X), which go-diskfs cannot write to FAT32", r, r)}
		}
	}
	if truncated {
		stem = d.numericTail(stem[:6], ext)
		hasLong = true
	}
	if hasLong {
		e.long = host
	}
	e.stem, e.ext, e.short = stem, ext, stem
	if ext != "" {
		e.short += "." + ext
	}
	if stem == "" && !hasLong {
		// fixShortNames gives an empty stem a new short name only
		// where a long name keeps the name (.profile).
		return &FATNameError{Path: hp, Why: "go-diskfs would store it as the FAT32 short name " + e.short + ", with nothing before the dot, and no long name"}
	}
	d.entries = append(d.entries, e)
	return nil
}

// joinHost is the host path of name in dir, quoted when it is not valid
// UTF-8, so that the message shows its bytes.
func joinHost(dir, name string) string {
	p := filepath.Join(dir, name)
	if !utf8.ValidString(p) {
		return strconv.Quote(p)
	}
	return p
}

// fatNameProblem says why go-diskfs cannot store name as a FAT32 long
// name unchanged, or "" if it can. It writes one UTF-16 unit per
// character, the character's low 16 bits: a character past U+FFFF (an
// emoji) becomes another, so a😀.txt and a😃.txt would have one short
// name and the guest would see neither name; U+FFFF is the padding of
// long names, where the name would end.
func fatNameProblem(name string) string {
	if !utf8.ValidString(name) {
		return "its name is not valid UTF-8, and FAT32 names are Unicode (UTF-16)"
	}
	for _, r := range name {
		if r > 0xfffe {
			return fmt.Sprintf("its name holds %q (U+%04X), a character past U+FFFE, which go-diskfs does not write to FAT32 names (it would store another character)", r, r)
		}
	}
	// NetBSD's msdosfs drops a looked-up name's trailing dots and spaces
	// (sys/fs/msdosfs/msdosfs_conv.c unix2dosfn) and then takes the first
	// entry whose short name matches, so "a." and "a " would open "a";
	// Windows refuses such names too.
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return "its name ends in a dot or a space, which FAT32 readers drop when they look a name up (NetBSD's msdosfs would open another file)"
	}
	return ""
}

// fatShortName is the short name go-diskfs gives a new entry name (its
// convertLfnSfn): the part before the last dot and at most three bytes
// after it, upper-cased; spaces and dots dropped; a character that is not
// a valid short-name character replaced by "_", judged by its low byte
// (so "ж", U+0436, is kept, and go-diskfs then fails on it). A name that
// is not its own short name gets a long name; a stem past eight
// characters is cut for a numeric tail.
func fatShortName(name string) (stem, ext string, hasLong, truncated bool) {
	rawStem, rawExt := name, ""
	if i := strings.LastIndex(name, "."); i >= 0 {
		rawStem, rawExt = name[:i], name[i+1:]
		if len(rawExt) > 3 {
			rawExt = rawExt[:3]
			hasLong = true
		}
		ext = fatUpperValid(rawExt)
	}
	if ext != rawExt {
		hasLong = true
	}
	stem = fatUpperValid(rawStem)
	if stem != rawStem {
		hasLong = true
	}
	if len(stem) > 8 {
		hasLong, truncated = true, true
	}
	return stem, ext, hasLong, truncated
}

// fatShortChars are the characters go-diskfs keeps in short names.
const fatShortChars = "!#$%&'()-0123456789@ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`{}~"

// fatUpperValid is go-diskfs's uCaseValid.
func fatUpperValid(s string) string {
	var b strings.Builder
	for _, r := range []rune(s) {
		switch {
		case strings.IndexByte(fatShortChars, byte(r)) >= 0:
			b.WriteRune(r)
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 32)
		case r == ' ' || r == '.':
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// numericTail is the stem go-diskfs gives a cut name (its
// uniqueShortName): stem6 with the lowest "~N" not yet in the directory.
func (d *fatDir) numericTail(stem6, ext string) string {
	taken := map[string]bool{}
	for _, e := range d.entries {
		if !e.label {
			taken[e.stem+e.ext] = true
		}
	}
	for n := 1; ; n++ {
		tail := fmt.Sprintf("~%d", n)
		s := stem6
		if len(s) > 8-len(tail) {
			s = s[:8-len(tail)]
		}
		if !taken[s+tail+ext] {
			return s + tail
		}
	}
}
