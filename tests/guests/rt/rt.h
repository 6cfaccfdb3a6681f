/* The guest test runtime: serial output, TAP lines, descriptor tables,
 * exception capture and the exit port. */
#ifndef RT_H
#define RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct trap_frame {
	u32 edi, esi, ebp, esp_dummy, ebx, edx, ecx, eax;
	u32 vector, error;
	u32 eip, cs, eflags;
	u32 user_esp, user_ss; /* only when cs & 3 = 3 */
};

/* Called for int $0x80 and int $0x81 when set; may change the frame. */
extern void (*syscall_hook)(struct trap_frame *f);
/* Called for IRQ 0 (vector 32, after an idt_irq0() call) when set. */
extern void (*irq_hook)(struct trap_frame *f);
/* Called first for exceptions (vectors 0-31) when set; returns nonzero
 * when it handled the exception. */
extern int (*fault_hook)(struct trap_frame *f);
/* Routes vector 32 and 129 (DPL 3) through the hooks above. */
void idt_hooks(void);

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

void putc_serial(char c);
void puts_serial(const char *s);
void printf_serial(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* TAP */
void plan(int n);
void ok(int cond, const char *desc);
void is_u32(u32 got, u32 want, const char *desc);
_Noreturn void done(void);

/* The test's entry point, called with the Multiboot magic and info. */
void test_main(u32 magic, u32 mbi);

/* Exception capture: the next exception is recorded and execution resumes at
 * `resume` (0 = after a faulting instruction, the handler's choice). */
struct trap_record {
	int count;
	u32 vector, error, eip, cs, eflags;
};
extern volatile struct trap_record last_trap;
extern volatile u32 trap_resume;
void trap_reset(void);

/* GDT: 0x08 code, 0x10 data, 0x18 code (alternate), 0x20 data (alternate),
 * 0x28 TSS, 0x30 LDT; 0x38 and 0x40 are user_mode_setup's user code and
 * data, free for other tests. */
extern u64 gdt[16];
void gdt_load(void);
void set_descriptor(int index, u32 base, u32 limit, u8 access, u8 flags);
void idt_set(int vec, void (*handler)(void), int dpl);
/* The IDT's 256 entries, for gates idt_set does not make (task gates,
 * 16-bit gates). */
u64 *idt_entries(void);
/* Code assembled to run elsewhere (real mode, 16-bit segments): the bytes
 * from start to end copied to physical `base`, where offsets from start
 * are its addresses. */
void blob_copy(u32 base, const char *start, const char *end);
/* Ring 3 set-up: flat user code and data at 0x38 and 0x40 (DPL 3), and a
 * 32-bit TSS at 0x28 (tss, tss_bytes long) with ESP0 = esp0, SS0 = 0x10 and
 * the I/O map base past its limit (no port for ring 3); loads the GDT and
 * TR. */
void user_mode_setup(u32 *tss, u32 tss_bytes, u32 esp0);
#define USER_CS 0x3B
#define USER_DS 0x43
/* iret to `entry` at ring 3 (CS USER_CS; SS, DS and ES USER_DS) with
 * ESP = esp and EFLAGS = IF. */
_Noreturn void enter_user(void (*entry)(void), u32 esp);
/* Ring-3 programs report through int $0x80: eax = 1 ok(ebx, ecx =
 * description), 2 is_u32(ebx, edx, ecx).  A syscall_hook hands its frame
 * to user_report first, which returns 0 for any other call. */
#define UOK(cond, desc) __asm__ volatile("int $0x80" : : "a"(1), "b"(cond), "c"(desc) : "memory")
#define UIS(got, want, desc) __asm__ volatile("int $0x80" : : "a"(2), "b"(got), "d"(want), "c"(desc) : "memory")
int user_report(struct trap_frame *f);
/* Both 8259s initialised (vectors 0x20 and 0x28), the master's lines
 * masked by `master_mask` and the slave's all, and the 8254's channel 0
 * at 100 Hz (mode 2). */
void pic_pit_100hz(u8 master_mask);


/* One 32-bit load or store with a register address, a call of its own
 * (so the compiler keeps every access the test means to make). */
u32 read32(u32 addr);
void write32(u32 addr, u32 v);

static inline u32 read_cr2(void)
{
	u32 v;
	__asm__ volatile("movl %%cr2, %0" : "=r"(v));
	return v;
}

/* CR4 with the bits of `mask` replaced by those of `bits`. */
static inline void cr4_set_bits(u32 mask, u32 bits)
{
	__asm__ volatile("movl %%cr4, %%eax; andl %0, %%eax; orl %1, %%eax; movl %%eax, %%cr4"
			 : : "r"(~mask), "r"(bits) : "eax", "memory");
}

static inline u32 read_eflags(void)
{
	u32 f;
	__asm__ volatile("pushfl; popl %0" : "=r"(f));
	return f;
}

/* Runs `insn` (asm text) expecting an exception; execution resumes after it.
 * Sets *at to the address of the instruction. */
#define EXPECT_TRAP(at, insn, ...)                                                    \
	do {                                                                          \
		trap_reset();                                                         \
		__asm__ volatile("movl $2f, trap_resume\n"                          \
				 "movl $1f, %0\n"                                     \
				 "1: " insn "\n"                                      \
				 "2:\n" : "=m"(at) : __VA_ARGS__ : "memory", "cc");    \
	} while (0)
#endif
