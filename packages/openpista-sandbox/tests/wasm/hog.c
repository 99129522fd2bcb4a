// Takes memory 1 MB at a time up to 256 MB, writing to every 4 KB page of each block and
// summing them, so no compiler can drop the allocations; prints how far it got.
#include <stdio.h>
#include <stdlib.h>

#define BLOCK (1 << 20)
#define PAGE 4096

int main(void) {
    unsigned long sum = 0;
    for (int megabytes = 0; megabytes < 256; megabytes++) {
        volatile char *block = malloc(BLOCK);
        if (block == NULL) {
            fprintf(stderr, "malloc failed after %d MB\n", megabytes);
            return 1;
        }
        for (int offset = 0; offset < BLOCK; offset += PAGE) block[offset] = (char)(offset >> 12);
        for (int offset = 0; offset < BLOCK; offset += PAGE) sum += (unsigned char)block[offset];
    }
    printf("got 256 MB (checksum %lu)\n", sum);
    return 0;
}
