// Prints its stdin (the skill's args JSON) back on stdout; {"exit": N} also exits with N
// after a line on stderr, and {"repeat": N} prints stdin N times (for output limits).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    static char input[1 << 20];
    size_t length = fread(input, 1, sizeof input - 1, stdin);
    input[length] = '\0';
    const char *exit_at = strstr(input, "\"exit\": ");
    if (exit_at != NULL) {
        fprintf(stderr, "asked to fail\n");
        return atoi(exit_at + 8);
    }
    const char *repeat_at = strstr(input, "\"repeat\": ");
    int repeat = repeat_at != NULL ? atoi(repeat_at + 10) : 1;
    for (int i = 0; i < repeat; i++) fwrite(input, 1, length, stdout);
    return 0;
}
