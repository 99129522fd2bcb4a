// Executes `unreachable` after a word on stderr: a trap.
#include <stdio.h>

int main(void) {
    fputs("about to crash\n", stderr);
    fflush(stderr);
    __builtin_trap();
}
