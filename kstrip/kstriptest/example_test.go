package kstriptest_test

import (
	"fmt"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// FromConfig writes cfdata as config(1) would: the attachment chosen by
// the attribute the parent provides, Star units after the fixed ones,
// and {attribute, NULL, 0} for a parent that is only an attribute.
func ExampleFromConfig() {
	entries, provides, err := kstriptest.FromConfig(`
device mainbus: isabus
attach mainbus at root
device isa: isa
attach isa at isabus
device com
attach com at isa with com_isa
device wdc: ata
attach wdc at isa with wdc_isa
device atabus
attach atabus at ata
mainbus0 at root
isa0 at mainbus?
com0 at isa? port 0x3f8
com* at isa?
wdc0 at isa?
atabus* at ata?
`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range entries {
		fmt.Printf("%-16s %-8s unit %d state %d parent %+v\n", e.Spec, e.Attach, e.Unit, e.State, e.Parent)
	}
	fmt.Println(provides["wdc"])
	// Output:
	// mainbus0 at root mainbus  unit 0 state 0 parent <nil>
	// isa0 at mainbus? isa      unit 0 state 0 parent &{IAttr:isabus Name:mainbus Unit:-1}
	// com0 at isa?     com_isa  unit 0 state 0 parent &{IAttr:isa Name:isa Unit:-1}
	// com* at isa?     com_isa  unit 1 state 2 parent &{IAttr:isa Name:isa Unit:-1}
	// wdc0 at isa?     wdc_isa  unit 0 state 0 parent &{IAttr:isa Name:isa Unit:-1}
	// atabus* at ata?  atabus   unit 0 state 2 parent &{IAttr:ata Name: Unit:0}
	// [ata]
}
