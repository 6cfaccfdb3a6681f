/*
 * Host address-space layout.
 *
 * The host CPU here cannot run 32-bit code (the kernel has IA-32 emulation off
 * and honours no LDT), so translated guest code is 64-bit code that addresses
 * guest memory with 32-bit addresses (address-size prefix 0x67).  Guest linear
 * address L therefore lives at host address L: the low 4 GiB of the host is
 * the guest's window, reserved whole at start-up, and nothing a 32-bit
 * address can name belongs to the monitor.  The monitor (translation cache,
 * VCPU, tables) lives above 4 GiB, out of reach by construction, and so do
 * the space windows below, which only 64-bit sequences the translator
 * emits reach.
 *
 * Host addresses below vm.mmap_min_addr cannot be mapped; guest accesses
 * there fault and are emulated.
 */
#ifndef BT86_LAYOUT_H
#define BT86_LAYOUT_H

#define GUEST_WINDOW_SIZE 0x100000000ull
/* The space windows (shadow.h): SPACE_SLOTS pairs of views of guest
 * linear space from SPACE_WINDOWS_BASE, a kernel view and then a user view,
 * each pair bound to one recent CR3.  Ring-3 code reaches the current user
 * view through its gs: prefix (the host GS base); ring-0 instructions
 * found to touch user pages reach the current kernel view through
 * VC_KWIN_BASE.  Windows are 4 GiB-aligned, so that the low 32 bits of a
 * register biased into one are the guest's.  A string instruction's run
 * faults where the guest's addresses would wrap: a kernel view's first and
 * last pages are never mapped (so both neighbours of every user view are
 * guards), and the region has a reserved page on either side. */
#define SPACE_WINDOWS_BASE 0x1000000000ull
#define SPACE_SLOTS 4u
#define SPACE_WINDOWS_END (SPACE_WINDOWS_BASE + 2 * SPACE_SLOTS * GUEST_WINDOW_SIZE)
/* The soft TLB's frame region (stlb.h): all of guest RAM in one mapping,
 * frame F at STLB_FRAMES_BASE + F * 4 KiB. */
#define STLB_FRAMES_BASE 0x2000000000ull
#define PAGE_SIZE_4K 4096u
#define PAGE_SHIFT_4K 12

#endif
