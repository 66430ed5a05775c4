// A wasip1 reactor for a registry `function.wasm` entry with a `wit`
// signature: `greet: func(name: string) -> string;`, lifted by the runtime
// straight from this core module (no adapter). It uses preview 1 through
// wasi-libc: the environment, a file on a preopened directory, the clock,
// random bytes and stdout.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size, size_t align,
                                                                 size_t new_size) {
    (void)old_size;
    (void)align; // malloc's alignment (16) covers every canonical ABI type
    return realloc(old, new_size);
}

// The return area: pointer and length of the result string.
static uint32_t ret_area[2];
static char *last;

static size_t read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = 0;
    return n;
}

__attribute__((export_name("greet"))) uint32_t *greet(char *name, size_t len) {
    const char *greeting = getenv("GREETING");
    char motto[128] = "";
    if (!read_file("/data/motto.txt", motto, sizeof motto)) strcpy(motto, "(no motto)");
    struct timespec ts;
    int clock_ok = clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 1600000000;
    unsigned char rnd[8];
    int random_ok = getentropy(rnd, sizeof rnd) == 0;
    printf("greeting %.*s\n", (int)len, name);
    fflush(stdout);
    size_t cap = len + strlen(motto) + 64;
    char *out = malloc(cap);
    int n = snprintf(out, cap, "%s, %.*s! %s [clock %s, random %s]", greeting ? greeting : "hello", (int)len,
                     name, motto, clock_ok ? "ok" : "bad", random_ok ? "ok" : "bad");
    free(name); // the argument was allocated by cabi_realloc and is ours
    last = out;
    ret_area[0] = (uint32_t)(uintptr_t)out;
    ret_area[1] = (uint32_t)n;
    return ret_area;
}

__attribute__((export_name("cabi_post_greet"))) void cabi_post_greet(uint32_t *ret) {
    (void)ret;
    free(last);
    last = NULL;
}
