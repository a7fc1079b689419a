package kstrip

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary files to the ELF reader and table walker, and
// strips whatever parses: no input may panic, and a strip may change only
// cf_fstate bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("\x1f\x8b\x08\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := clone(data)
		k, err := Parse(img)
		if err != nil {
			if k != nil {
				t.Fatal("Parse returned a kernel and an error")
			}
			return
		}
		for i, e := range k.Entries {
			if e.Index != i || e.Offset < 0 || e.Offset+int64(k.EntrySize()) > int64(len(data)) {
				t.Fatalf("entry %d out of the file: %+v", i, e)
			}
			_ = e.Label() + e.Parent.String()
		}
		if len(k.Entries) > 0 {
			k.Suggest(k.Entries[0].Name + "x")
		}
		r, err := k.Plan(Plan{Strip: true, Keep: DefaultKeep, IgnoreUnknown: true})
		if errors.Is(err, ErrNothingKept) {
			// A table none of whose names is kept is refused, not
			// stripped bare: nothing may have been written.
			if !bytes.Equal(img, data) {
				t.Fatal("a refused plan changed the image")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Apply(r); err != nil {
			t.Fatal(err)
		}
		allowed := map[int64]bool{}
		for _, c := range r.Changes {
			for j := 0; j < k.StateSize(); j++ {
				allowed[k.StateOffset(c.Index)+int64(j)] = true
			}
		}
		for i := range data {
			if data[i] != img[i] && !allowed[int64(i)] {
				t.Fatalf("byte %#x changed outside cf_fstate", i)
			}
		}
	})
}
