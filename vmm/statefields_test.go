package vmm

import (
	"reflect"
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
