# The GDB test's session (gdb_test.sh): the same commands against bt86's
# stub and QEMU's, whose answers must be the same.  PORT is replaced.
set pagination off
set confirm off
target remote :PORT
break checkpoint
continue
info registers eip
x/wx $esp+4
x/2i patched
set {unsigned char[6]} patched = {0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3}
x/6xb patched
break steps
continue
delete 1
stepi
p/x $eax
stepi
p/x $eax
stepi
info registers eip
stepi
p/x $eax
stepi
p/x $eax
stepi
info registers eip
p/x $cr0
p/x $cs
break checkpoint
continue
x/wx $esp+4
delete
# The guest spins until release is set: gdb_test.sh sends gdb SIGINT
# (what Ctrl-C does), which interrupts the guest.
continue
p *(unsigned *)&release
set var *(unsigned *)&release = 1
# Watchpoints, with the guest's paging on: a write watchpoint fires at
# each store that changes counter, a read one at the read of secret and
# one through the 4 MiB page, an access one at the increment.
break watched
continue
delete
watch *(unsigned *)&counter
continue
continue
delete
rwatch *(unsigned *)&secret
rwatch *(unsigned *)(0x400000 + (unsigned)&far_secret)
continue
info registers eip
continue
info registers eip
delete
awatch *(unsigned *)&counter
continue
delete
# and from ring 3
watch *(unsigned *)&ucounter
continue
continue
info registers cs
delete
continue
