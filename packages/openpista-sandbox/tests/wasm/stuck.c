// Takes 60 MB, writes all of it, then sleeps forever in host calls (WASI poll_oneoff), where
// epoch interruption never looks: the time limit must still end it and free the memory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char *block = malloc(60 << 20);
    if (block == NULL) return 2;
    memset(block, 1, 60 << 20);
    puts("holding 60 MB, going to sleep");
    fflush(stdout);
    for (;;) sleep(100000);
}
