# bt86_guest(NAME SOURCE...): a freestanding 32-bit Multiboot ELF image
# NAME.elf in the current binary directory, built with the host gcc in -m32
# mode and linked with the guest runtime (tests/guests/rt).

set(BT86_GUEST_RT_DIR ${CMAKE_SOURCE_DIR}/tests/guests)
set(BT86_GUEST_CFLAGS -m32 -march=i686 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -nostdlib
  -O2 -Wall -Wextra -fno-asynchronous-unwind-tables -mno-sse -mno-mmx -mno-80387 -fno-builtin
  -I${BT86_GUEST_RT_DIR})

# 64-bit arithmetic in freestanding 32-bit code needs libgcc's helpers.
execute_process(COMMAND gcc -m32 -print-libgcc-file-name OUTPUT_VARIABLE BT86_GUEST_LIBGCC
  OUTPUT_STRIP_TRAILING_WHITESPACE)

function(bt86_guest name)
  set(objs)
  foreach(src ${BT86_GUEST_RT_DIR}/rt/boot.S ${BT86_GUEST_RT_DIR}/rt/rt.c ${ARGN})
    get_filename_component(base ${src} NAME_WE)
    set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.d/${base}.o)
    add_custom_command(OUTPUT ${obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/${name}.d
      COMMAND gcc ${BT86_GUEST_CFLAGS} -c ${src} -o ${obj}
      DEPENDS ${src} ${BT86_GUEST_RT_DIR}/rt/rt.h
      VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${name}.elf
    COMMAND ld -m elf_i386 -z noexecstack --no-warn-rwx-segments -T ${BT86_GUEST_RT_DIR}/rt/link.ld
            -o ${CMAKE_CURRENT_BINARY_DIR}/${name}.elf ${objs} ${BT86_GUEST_LIBGCC}
    DEPENDS ${objs} ${BT86_GUEST_RT_DIR}/rt/link.ld
    VERBATIM)
  add_custom_target(guest_${name} ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/${name}.elf)
endfunction()
