package vmm

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fillFields sets every field v reaches to a value other than its zero,
// counting from *n: numbers small enough for any field's width, bools
// true, strings and byte slices non-empty, other slices two elements long.
func fillFields(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n%100 + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%100 + 1))
	case reflect.String:
		v.SetString(string(rune('a' + *n%26)))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillFields(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fillFields(v.Index(i), n)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fillFields(v.Field(i), n)
		}
	}
}

// TestFieldsPartCarriesEveryField: the fields part of the state section
// (format version 5) is written field by field, so a field added to
// machineState or to a device's state without a place in that layout
// would be lost by every snapshot, silently. Every field the layout
// covers is set here by reflection, not by name, and must come back.
func TestFieldsPartCarriesEveryField(t *testing.T) {
	var st machineState
	n := 0
	fillFields(reflect.ValueOf(&st).Elem(), &n)
	// The KVM structures travel in the binary part after it.
	tsc := st.VCPU.TSCKHz
	st.VCPU, st.IRQChips, st.PIT2, st.Clock = vcpuSnapshot{TSCKHz: tsc}, nil, nil, nil
	var back machineState
	if err := decodeFields(encodeFields(nil, &st), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("fields part lost or changed a field:\n got %+v\nwant %+v", back, st)
	}
}

// TestFieldsPartDiskTakenNs: the disks' TakenNs follow the disks in the
// fields part, written only when one is recorded, so that a state with
// none encodes as a writer from before the record wrote it (byte for
// byte the part without them) and such a part decodes with none. A part
// that holds fewer TakenNs than disks, or more bytes after them, is
// refused naming the field.
func TestFieldsPartDiskTakenNs(t *testing.T) {
	disks := []DiskIdentity{{Path: "a.img", Size: 4096, MtimeNs: 5, Content: "crc32c:00000000"}, {Path: "b.img", ReadOnly: true}}
	without := encodeFields(nil, &machineState{Disks: disks})
	taken := slices.Clone(disks)
	taken[0].TakenNs, taken[1].TakenNs = 7e18, 0
	with := encodeFields(nil, &machineState{Disks: taken})
	if !bytes.Equal(with[:len(without)], without) || len(with) != len(without)+16 {
		t.Fatalf("with TakenNs, %d bytes not %d and then 16 more", len(with), len(without))
	}
	tests := []struct {
		name string
		part []byte
		want []DiskIdentity
		err  string
	}{
		{"none recorded", without, disks, ""},
		{"recorded", with, taken, ""},
		{"one short", with[:len(with)-8], nil, "disk TakenNs: 0 bytes left, want 8"},
		{"half of one", with[:len(with)-4], nil, "disk TakenNs: 4 bytes left, want 8"},
		{"bytes after", append(slices.Clone(with), 0), nil, "1 bytes after the last field"},
		{"no disks, bytes after", append(encodeFields(nil, &machineState{}), make([]byte, 8)...), nil, "8 bytes after the last field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st machineState
			err := decodeFields(tt.part, &st)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decodeFields: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(st.Disks, tt.want) {
				t.Fatalf("decodeFields: %v, disks %+v, want %+v", err, st.Disks, tt.want)
			}
		})
	}
}
