// Package bootelf holds what smolvmm's kernel loaders share: reading ELF32
// and ELF64 headers, program headers, section headers and notes from an
// io.ReaderAt with every offset checked against the file, placing PT_LOAD
// segments in guest memory with their BSS zeroed, the memory map the guest
// is told about, and the errors all of that can fail with.
//
// It is pure (no files, no ioctls). The multiboot and netbsdboot packages
// build their protocols on it and re-export its sentinel errors, so callers
// never import it.
package bootelf
