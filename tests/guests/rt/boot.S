/* Multiboot entry and the exception stubs of the guest test runtime. */
	.section .note.GNU-stack, "", @progbits
	.section .multiboot, "a"
	.align 4
	.long 0x1BADB002
	.long 0x00000003
	.long -(0x1BADB002 + 0x00000003)

	.text
	.globl _start
_start:
	mov %cs, boot_state
	mov %ds, boot_state+4
	mov %ss, boot_state+8
	mov %es, boot_state+12
	mov %eax, boot_state+16
	mov %cr0, %eax
	mov %eax, boot_state+20
	mov boot_state+16, %eax
	mov $stack_top, %esp
	pushf
	popl boot_state+24
	push %ebx
	push %eax
	/* Registers Multiboot leaves undefined start at 0, so that what a
	 * guest holds in them (and the -d int log shows) is the same under
	 * every loader. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	call rt_start
1:	hlt
	jmp 1b

/* Vector stubs: push a dummy error code where the CPU pushes none, then the
 * vector, and call rt_trap with a pointer to the frame. */
.macro stub n, err
	.globl trap_stub_\n
trap_stub_\n:
	.if \err == 0
	push $0
	.endif
	push $\n
	jmp trap_common
.endm
stub 0,0
stub 1,0
stub 2,0
stub 3,0
stub 4,0
stub 5,0
stub 6,0
stub 7,0
stub 8,1
stub 9,0
stub 10,1
stub 11,1
stub 12,1
stub 13,1
stub 14,1
stub 15,0
stub 16,0
stub 17,1
stub 18,0
stub 19,0
stub 32,0
stub 48,0
stub 128,0
stub 129,0

trap_common:
	pusha
	cld /* C code's direction, whatever the interrupted code's; iret restores it */
	push %esp
	call rt_trap
	add $4, %esp
	popa
	add $8, %esp
	iret

	.data
	.globl boot_state
boot_state:
	.space 28

	.bss
	.align 16
	.space 262144
stack_top:
