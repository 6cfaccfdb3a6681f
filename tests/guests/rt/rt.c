#include "rt.h"

#include <stdarg.h>

#define COM1 0x3F8
#define EXIT_PORT 0xF4

u64 gdt[16];
static u64 idt[256];

u64 *idt_entries(void)
{
	return idt;
}

void blob_copy(u32 base, const char *start, const char *end)
{
	for (u32 i = 0; i < (u32)(end - start); i++)
		((volatile u8 *)base)[i] = (u8)start[i];
}
volatile struct trap_record last_trap;
void (*syscall_hook)(struct trap_frame *f);
void (*irq_hook)(struct trap_frame *f);
int (*fault_hook)(struct trap_frame *f);
volatile u32 trap_resume;
static int test_no, failures;

void putc_serial(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (u8)c);
}

void puts_serial(const char *s)
{
	while (*s)
		putc_serial(*s++);
}

static void put_num(u32 v, unsigned base, int width, char pad, int neg)
{
	char buf[16];
	int n = 0;
	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	while (n < width)
		buf[n++] = pad;
	while (n)
		putc_serial(buf[--n]);
}

void printf_serial(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc_serial(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		switch (*fmt) {
		case 'd': {
			int v = va_arg(ap, int);
			put_num(v < 0 ? -(u32)v : (u32)v, 10, width, pad, v < 0);
			break;
		}
		case 'u':
			put_num(va_arg(ap, u32), 10, width, pad, 0);
			break;
		case 'x':
			put_num(va_arg(ap, u32), 16, width, pad, 0);
			break;
		case 's':
			puts_serial(va_arg(ap, const char *));
			break;
		case 'c':
			putc_serial((char)va_arg(ap, int));
			break;
		default:
			putc_serial(*fmt);
			break;
		}
	}
	va_end(ap);
}

void plan(int n)
{
	printf_serial("1..%d\n", n);
}

void ok(int cond, const char *desc)
{
	test_no++;
	if (!cond)
		failures++;
	printf_serial("%sok %d - %s\n", cond ? "" : "not ", test_no, desc);
}

void is_u32(u32 got, u32 want, const char *desc)
{
	ok(got == want, desc);
	if (got != want)
		printf_serial("# got %08x, want %08x\n", got, want);
}

_Noreturn void done(void)
{
	outl(EXIT_PORT, failures ? 1 : 0);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void set_descriptor(int index, u32 base, u32 limit, u8 access, u8 flags)
{
	gdt[index] = (u64)(limit & 0xFFFF) | ((u64)(base & 0xFFFFFF) << 16) | ((u64)access << 40) |
		     ((u64)((limit >> 16) & 0xF) << 48) | ((u64)(flags & 0xF) << 52) |
		     ((u64)(base >> 24) << 56);
}

void user_mode_setup(u32 *tss, u32 tss_bytes, u32 esp0)
{
	set_descriptor(7, 0, 0xFFFFF, 0xFA, 0xC); /* 0x38: user code, DPL 3 */
	set_descriptor(8, 0, 0xFFFFF, 0xF2, 0xC); /* 0x40: user data, DPL 3 */
	tss[1] = esp0;
	tss[2] = 0x10;                            /* SS0 */
	tss[25] = tss_bytes << 16;                /* I/O map base past the limit */
	set_descriptor(5, (u32)tss, tss_bytes - 1, 0x89, 0x0);
	gdt_load();
	__asm__ volatile("ltr %w0" : : "r"(0x28));
}

void enter_user(void (*entry)(void), u32 esp)
{
	__asm__ volatile("pushl %0\n pushl %1\n pushl $0x202\n pushl %2\n pushl %3\n"
			 "movw %w0, %%ax\n movw %%ax, %%ds\n movw %%ax, %%es\n"
			 "iret" : : "r"(USER_DS), "r"(esp), "r"(USER_CS), "r"((u32)entry) : "eax", "memory");
	__builtin_unreachable();
}

int user_report(struct trap_frame *f)
{
	switch (f->eax) {
	case 1:
		ok(f->ebx, (const char *)f->ecx);
		return 1;
	case 2:
		is_u32(f->ebx, f->edx, (const char *)f->ecx);
		return 1;
	default:
		return 0;
	}
}

void pic_pit_100hz(u8 master_mask)
{
	outb(0x20, 0x11); outb(0xA0, 0x11);
	outb(0x21, 0x20); outb(0xA1, 0x28);
	outb(0x21, 0x04); outb(0xA1, 0x02);
	outb(0x21, 0x01); outb(0xA1, 0x01);
	outb(0x21, master_mask); outb(0xA1, 0xFF);
	outb(0x43, 0x34);
	outb(0x40, 11932 & 0xFF);
	outb(0x40, 11932 >> 8);
}

void gdt_load(void)
{
	struct __attribute__((packed)) { u16 limit; u32 base; } d = {sizeof gdt - 1, (u32)gdt};
	__asm__ volatile("lgdt %0\n"
			 "ljmp $0x08, $1f\n"
			 "1: mov $0x10, %%ax\n"
			 "mov %%ax, %%ds\n mov %%ax, %%es\n mov %%ax, %%ss\n"
			 "mov %%ax, %%fs\n mov %%ax, %%gs\n"
			 : : "m"(d) : "eax", "memory");
}

void idt_set(int vec, void (*handler)(void), int dpl)
{
	u32 h = (u32)handler;
	idt[vec] = (u64)(h & 0xFFFF) | ((u64)0x08 << 16) | ((u64)(0x8E | (dpl << 5)) << 40) |
		   ((u64)(h >> 16) << 48);
}

#define STUB(n) extern void trap_stub_##n(void);
STUB(0) STUB(1) STUB(2) STUB(3) STUB(4) STUB(5) STUB(6) STUB(7) STUB(8) STUB(9) STUB(10)
STUB(11) STUB(12) STUB(13) STUB(14) STUB(15) STUB(16) STUB(17) STUB(18) STUB(19) STUB(48) STUB(128)
STUB(32) STUB(129)

void idt_hooks(void)
{
	idt_set(32, trap_stub_32, 0);
	idt_set(129, trap_stub_129, 3);
}

static void idt_init(void)
{
	void (*stubs[20])(void) = {trap_stub_0, trap_stub_1, trap_stub_2, trap_stub_3, trap_stub_4,
				  trap_stub_5, trap_stub_6, trap_stub_7, trap_stub_8, trap_stub_9,
				  trap_stub_10, trap_stub_11, trap_stub_12, trap_stub_13, trap_stub_14,
				  trap_stub_15, trap_stub_16, trap_stub_17, trap_stub_18, trap_stub_19};
	for (int i = 0; i < 20; i++)
		idt_set(i, stubs[i], 0);
	idt_set(48, trap_stub_48, 0);
	idt_set(128, trap_stub_128, 3);
	struct __attribute__((packed)) { u16 limit; u32 base; } d = {sizeof idt - 1, (u32)idt};
	__asm__ volatile("lidt %0" : : "m"(d));
}

void trap_reset(void)
{
	last_trap.count = 0;
	last_trap.vector = last_trap.error = last_trap.eip = 0xFFFFFFFF;
	trap_resume = 0;
}

void rt_trap(struct trap_frame *f);
void rt_trap(struct trap_frame *f)
{
	if ((f->vector == 128 || f->vector == 129) && syscall_hook) {
		syscall_hook(f);
		return;
	}
	if (f->vector == 32 && irq_hook) {
		irq_hook(f);
		return;
	}
	if (f->vector < 32 && fault_hook && fault_hook(f))
		return;
	last_trap.count++;
	last_trap.vector = f->vector;
	last_trap.error = f->error;
	last_trap.eip = f->eip;
	last_trap.cs = f->cs;
	last_trap.eflags = f->eflags;
	if (f->vector < 32 && f->vector != 3 && f->vector != 4 && f->vector != 1) {
		if (!trap_resume) {
			printf_serial("# unexpected exception %u (error %x) at %08x\n", f->vector, f->error, f->eip);
			ok(0, "no unexpected exception");
			done();
		}
		f->eip = trap_resume;
	}
}

u8 boot_pic_imr[2];

void rt_start(u32 magic, u32 mbi);
void rt_start(u32 magic, u32 mbi)
{
	/* The firmware leaves the PIT ticking on IRQ 0 at vector 8: mask every
	 * line, so a test sees only the interrupts it sets up. */
	boot_pic_imr[0] = inb(0x21);
	boot_pic_imr[1] = inb(0xA1);
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x80);
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);
	outb(COM1 + 2, 0xC7);
	set_descriptor(1, 0, 0xFFFFF, 0x9A, 0xC);
	set_descriptor(2, 0, 0xFFFFF, 0x92, 0xC);
	set_descriptor(3, 0, 0xFFFFF, 0x9A, 0xC);
	set_descriptor(4, 0, 0xFFFFF, 0x92, 0xC);
	gdt_load();
	idt_init();
	trap_reset();
	test_main(magic, mbi);
	done();
}

u32 read32(u32 addr)
{
	u32 v;
	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
	return v;
}

void write32(u32 addr, u32 v)
{
	__asm__ volatile("movl %1, (%0)" : : "r"(addr), "r"(v) : "memory");
}
