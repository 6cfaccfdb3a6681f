/* The PC as firmware leaves it for a -kernel boot, as xv6 and Linux read
 * it: the BIOS data area (COM1, the EBDA pointer that an MP-table search
 * starts from, base memory, video state) and the EBDA; the VGA in text mode
 * 3 (its registers, the CRTC cursor, the attribute flip-flop, the text
 * memory); system control port A (0x92); and COM1 interrupting with OUT2
 * low, as QEMU wires it (xv6 clears MCR).
 *
 * With "reset" on the command line it instead writes a line to the text
 * screen and resets the machine through port 0x92 (the runner's test reads
 * the screen back with --vga-log). */
#include "rt/rt.h"

/* The empty asm hides the constant address, which gcc would take for a
 * null-pointer offset below 4 KiB. */
static u8 peek8(u32 a)
{
	__asm__("" : "+r"(a));
	return *(volatile u8 *)a;
}

static u16 peek16(u32 a)
{
	__asm__("" : "+r"(a));
	return *(volatile u16 *)a;
}

static u8 crtc(u8 index)
{
	outb(0x3D4, index);
	return inb(0x3D5);
}

static u8 attr(u8 index)
{
	inb(0x3DA); /* flip-flop to "index" */
	outb(0x3C0, index);
	u8 v = inb(0x3C1);
	inb(0x3DA);
	outb(0x3C0, 0x20); /* palette access off again: the screen on */
	return v;
}

static void screen_puts(u32 row, const char *s)
{
	for (u32 col = 0; s[col]; col++)
		*(volatile u16 *)(0xB8000 + (row * 80 + col) * 2) = (u16)(0x1F00 | (u8)s[col]);
}

static int has_word(const char *s, const char *w)
{
	for (; *s; s++) {
		int i = 0;
		while (w[i] && s[i] == w[i])
			i++;
		if (!w[i])
			return 1;
	}
	return 0;
}

volatile u32 com1_irqs;
volatile u8 com1_iir;
extern void com1_stub(void);
__asm__(".text\n"
	"com1_stub: pushl %eax\n pushl %edx\n"
	"movw $0x3FA, %dx\n inb %dx, %al\n movb %al, com1_iir\n"
	"movw $0x3F9, %dx\n movb $0, %al\n outb %al, %dx\n" /* IER off: one interrupt */
	"incl com1_irqs\n"
	"movb $0x20, %al\n outb %al, $0x20\n"
	"popl %edx\n popl %eax\n iret\n");

static void bios_data_area(void)
{
	is_u32(peek16(0x400), 0x3F8, "BDA: COM1 at 0x3F8");
	is_u32(peek16(0x40E), 0x9FC0, "BDA: the EBDA at segment 0x9FC0");
	is_u32(peek8(0x9FC00), 1, "EBDA: 1 KiB long");
	is_u32(peek16(0x413), 639, "BDA: 639 KiB of base memory");
	is_u32(peek16(0x410) & 0x0E32, 0x0222, "BDA equipment: x87, 80x25 colour, one serial port");
	is_u32(peek16(0x41A) << 16 | peek16(0x41C), 0x001E001E, "BDA: an empty keyboard buffer");
	is_u32(peek8(0x449), 3, "BDA: video mode 3");
	is_u32(peek16(0x44A), 80, "BDA: 80 columns");
	is_u32(peek16(0x463), 0x3D4, "BDA: the CRTC at 0x3D4");
	is_u32(peek8(0x484), 24, "BDA: 25 rows");
	is_u32(peek16(0x485), 16, "BDA: a 16-line font");
}

static void vga_registers(void)
{
	is_u32(inb(0x3CC), 0x67, "VGA: miscellaneous output, colour ports");
	u32 geometry = (u32)crtc(0x01) << 24 | (u32)crtc(0x09) << 16 | (u32)crtc(0x12) << 8 | crtc(0x13);
	is_u32(geometry, 0x4F4F8F28, "CRTC: 80 columns, 16 scan lines, 400 lines, offset 40 words");
	is_u32(crtc(0x0A) << 8 | crtc(0x0B), 0x0D0E, "CRTC: cursor on scan lines 13-14");
	outb(0x3D4, 0x0E); outb(0x3D5, 0x01);
	outb(0x3D4, 0x0F); outb(0x3D5, 0x2C);
	is_u32(crtc(0x0E) << 8 | crtc(0x0F), 0x012C, "CRTC: the cursor location reads back");
	__asm__ volatile("outw %0, %1" : : "a"((u16)0x5A0F), "Nd"((u16)0x3D4));
	is_u32(crtc(0x0F), 0x5A, "CRTC: index and data in one 16-bit write");
	is_u32(inb(0x3D4), 0x0F, "CRTC: the index reads back");
	outb(0x3D4, 0x01); outb(0x3D5, 0x10);
	is_u32(crtc(0x01), 0x4F, "CRTC: registers 0-7 locked by bit 7 of register 0x11");
	outb(0x3C4, 0x04);
	is_u32(inb(0x3C5), 0x02, "sequencer: memory mode, odd/even");
	outb(0x3CE, 0x06);
	is_u32(inb(0x3CF), 0x0E, "graphics: text memory at 0xB8000, chained");
	is_u32(attr(0x10), 0x0C, "attribute: mode control, text with line graphics");
	is_u32(attr(0x06), 0x14, "attribute: palette entry 6 (brown)");
	inb(0x3DA);
	outb(0x3C0, 0x0F);
	outb(0x3C0, 0x2A);
	u32 flip = inb(0x3C0);
	outb(0x3C0, 0x20);
	is_u32(flip << 8 | attr(0x0F), 0x0F2A, "attribute: index, then data, then the index reads back");
	u8 a = inb(0x3DA), b = inb(0x3DA);
	is_u32((a ^ b) & 0x09, 0x09, "input status 1: the retrace bits change between reads");
	is_u32(inb(0x3BA), 0xFF, "the monochrome ports are not decoded in colour mode");
	outb(0x3C8, 0x10);
	outb(0x3C9, 0x01); outb(0x3C9, 0x02); outb(0x3C9, 0x03);
	outb(0x3C7, 0x10);
	u32 rgb = inb(0x3C9);
	rgb = rgb << 8 | inb(0x3C9);
	rgb = rgb << 8 | inb(0x3C9);
	is_u32(rgb, 0x010203, "DAC: a colour written reads back");
	is_u32(inb(0x3C7) << 8 | inb(0x3C8), 0x0311, "DAC: state 'reading', write index advanced");
}

static void text_memory(void)
{
	screen_puts(3, "bt86");
	is_u32(peek16(0xB8000 + 3 * 160 + 2), 0x1F74, "text memory: a character and attribute read back");
	*(volatile u32 *)(0xB8000 + 4 * 160) = 0x4F6B4F6F;
	is_u32(peek8(0xB8000 + 4 * 160 + 2), 0x6B, "text memory: a 32-bit store, byte by byte");
}

static void port_a(void)
{
	is_u32(inb(0x92), 0x02, "port 0x92: A20 on, no reset");
	outb(0x92, 0x02);
	is_u32(inb(0x92), 0x02, "port 0x92: rewriting A20 keeps the machine running");
}

static void com1_out2_low(void)
{
	is_u32(inb(0x3FC), 0x08, "MCR: OUT2 set, as the firmware leaves it");
	outb(0x3FC, 0x00);
	pic_pit_100hz(0xEF);  /* only IRQ 4 */
	idt_set(0x24, com1_stub, 0);
	outb(0x3F9, 0x02);     /* the transmitter-empty interrupt */
	__asm__ volatile("sti");
	for (u32 i = 0; i < 1000000 && !com1_irqs; i++)
		__asm__ volatile("pause");
	__asm__ volatile("cli");
	outb(0x21, 0xFF);
	is_u32(com1_irqs, 1, "COM1 interrupts with OUT2 low");
	is_u32(com1_iir & 0x0F, 0x02, "its IIR: transmitter holding register empty");
	outb(0x3FC, 0x08);
}

void test_main(u32 magic, u32 mbi)
{
	const u32 *info = (const u32 *)mbi;
	if (magic == 0x2BADB002 && (info[0] & 4) && has_word((const char *)info[4], "reset")) {
		screen_puts(0, "bt86 text screen: reset through port 0x92");
		outb(0x92, 0x03);
		for (;;)
			__asm__ volatile("hlt");
	}
	plan(34);
	bios_data_area();
	vga_registers();
	text_memory();
	port_a();
	com1_out2_low();
	done();
}
