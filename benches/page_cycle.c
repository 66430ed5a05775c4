/* What a fresh request's grown pages cost the kernel, with nothing else:
 * the guest writes `touched` pages of a 64 KiB wasm page it grew into, the
 * reset drops them (MADV_DONTNEED) and guards the page (MADV_GUARD_INSTALL,
 * Linux 6.13), and the next grow opens it (MADV_GUARD_REMOVE), so the next
 * writes fault the pages in again. One thread, so no TLB shootdown.
 * `shmem` maps a memfd instead: its dropped pages stay in the page cache,
 * zeroed in place first, as a reset would have to.
 *
 *   gcc -O2 benches/page_cycle.c -o page_cycle && ./page_cycle anon 8
 *
 * Figures in the README (Design, "Memories we provide"). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#define WASM_PAGE (64 << 10)
#define ROUNDS 200000

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int advise(char *p, int advice, const char *what) {
    if (madvise(p, WASM_PAGE, advice) == 0)
        return 0;
    perror(what);
    return 1;
}

int main(int argc, char **argv) {
    int shmem = argc > 1 && strcmp(argv[1], "shmem") == 0;
    int touched = argc > 2 ? atoi(argv[2]) : 8;
    long page = sysconf(_SC_PAGESIZE);
    if (touched < 1 || touched * page > WASM_PAGE) {
        fprintf(stderr, "usage: page_cycle anon|shmem PAGES (1..%ld)\n", WASM_PAGE / page);
        return 2;
    }
    char *p;
    if (shmem) {
        int fd = memfd_create("grown", 0);
        if (fd < 0 || ftruncate(fd, WASM_PAGE) != 0)
            return perror("memfd"), 1;
        p = mmap(NULL, WASM_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } else {
        p = mmap(NULL, WASM_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (p == MAP_FAILED)
        return perror("mmap"), 1;
    double start = now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        for (int k = 0; k < touched; k++)
            p[k * page + 8] = 1;
        if (shmem)
            memset(p, 0, touched * page);
        if (advise(p, MADV_DONTNEED, "MADV_DONTNEED") || advise(p, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL") ||
            advise(p, MADV_GUARD_REMOVE, "MADV_GUARD_REMOVE"))
            return 1;
    }
    double per = (now_ns() - start) / ROUNDS;
    printf("%s, %d pages touched: %.0f ns a cycle, %.0f ns a page\n", shmem ? "shmem" : "anon", touched, per,
           per / touched);
    return 0;
}
