// Never ends: only the epoch deadline stops it.
int main(void) {
    volatile unsigned long counter = 0;
    for (;;) counter++;
}
