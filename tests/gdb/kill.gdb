# A session that ends the run from the debugger (gdb_test.sh).
set pagination off
set confirm off
target remote :PORT
break checkpoint
continue
kill
