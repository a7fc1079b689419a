/*
 * The source of the tiny-*.kmod fixtures: a kernel module as
 * MODULE(MODULE_CLASS_MISC, tiny, NULL) lays one out, for NetBSD 9.1
 * (mi_version 901000000), built with Debian's gcc 12 and binutils:
 *   gcc -m32 -O2 -ffreestanding -fno-pic -fno-asynchronous-unwind-tables -fno-ident -c tiny.c -o tiny-i386.kmod
 *   gcc -m64 -O2 -ffreestanding -fno-pic -mcmodel=kernel -fno-asynchronous-unwind-tables -fno-ident -c tiny.c -o tiny-amd64.kmod
 *   strip --strip-all -o tiny-i386-stripped.kmod tiny-i386.kmod
 */
struct modinfo { unsigned mi_version; int mi_class; int (*mi_modcmd)(int, void *); const char *mi_name; const char *mi_required; };
static int tiny_modcmd(int cmd, void *arg) { (void)arg; return cmd == 0 ? 0 : 25; }
static const struct modinfo tiny_modinfo = { 901000000, 1, tiny_modcmd, "tiny", 0 };
__attribute__((section("link_set_modules"), used)) static const void *__link_set_modules_sym_tiny_modinfo = &tiny_modinfo;
