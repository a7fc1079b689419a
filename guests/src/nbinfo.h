/* The stack and bootinfo records NetBSD's native /boot handoff leaves. */
#ifndef NBINFO_H
#define NBINFO_H
#include "rt.h"

#pragma GCC visibility push(hidden)
/* nb_print prints the return address and six words at sp (the kernel's ESP
 * at entry) and every bootinfo record they point at, one line per fact, each
 * starting "nb: ". It fails (exit 1) on a record it cannot walk safely. */
void nb_print(const u32 *sp);
#pragma GCC visibility pop

#endif
