// Sleeps that end by themselves still work: a short nanosleep lasts at least as long as asked,
// and poll() on stdin (a file: always ready) returns at once without waiting for its timeout.
#include <poll.h>
#include <stdio.h>
#include <time.h>

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

int main(void) {
    long long before = now_ms();
    struct timespec nap = {0, 50 * 1000000};
    int slept = nanosleep(&nap, NULL);
    printf("nanosleep 50 ms: returned %d, took at least 50 ms: %s\n", slept,
           now_ms() - before >= 50 ? "yes" : "no");
    struct pollfd input = {0, POLLIN, 0};
    before = now_ms();
    int ready = poll(&input, 1, 60000);
    printf("poll stdin: %d ready, readable: %s, waited under 60 s: %s\n", ready,
           (input.revents & POLLIN) ? "yes" : "no", now_ms() - before < 60000 ? "yes" : "no");
    char buffer[64] = {0};
    size_t got = fread(buffer, 1, sizeof buffer - 1, stdin);
    printf("stdin: %zu bytes: %s\n", got, buffer);
    return 0;
}
