/*
 * Host address-space layout.
 *
 * The host CPU here cannot run 32-bit code (the kernel has IA-32 emulation off
 * and honours no LDT), so translated guest code is 64-bit code that addresses
 * guest memory with 32-bit addresses (address-size prefix 0x67).  Guest linear
 * address L therefore lives at host address L: the low 4 GiB of the host is
 * the guest's window, reserved whole at start-up, and nothing a 32-bit
 * address can name belongs to the monitor.  The monitor (translation cache,
 * VCPU, tables) lives above 4 GiB, out of reach by construction.
 *
 * Host addresses below vm.mmap_min_addr cannot be mapped; guest accesses
 * there fault and are emulated.
 */
#ifndef BT86_LAYOUT_H
#define BT86_LAYOUT_H

#define GUEST_WINDOW_SIZE 0x100000000ull
/* Ring-3 code sees guest linear space through a second window holding only
 * the pages a user access may touch; its host base is the GS base. */
#define USER_WINDOW_BASE 0x100000000ull
/* Guard pages at the edges of the user window, so that a ring-3 string
 * instruction run with 64-bit addresses (translate.c) faults where the
 * guest's 32-bit addresses would wrap: the page past the window is
 * reserved, and the kernel window's top page is never mapped. */
#define USER_WINDOW_GUARD (USER_WINDOW_BASE + GUEST_WINDOW_SIZE)
#define KERNEL_WINDOW_TOP_PAGE 0xFFFFFu
#define PAGE_SIZE_4K 4096u
#define PAGE_SHIFT_4K 12

#endif
