// Sleeps in a host call (poll_oneoff) far past any test's time limit.
#include <stdio.h>
#include <unistd.h>

int main(void) {
    puts("going to sleep");
    fflush(stdout);
    sleep(600);
    return 0;
}
