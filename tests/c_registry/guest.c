// The C registry guest: a component written against the bindings
// wit-bindgen's C generator makes (gen/, see build.sh). Its world declares
// a record (`stats`) at world level, as user worlds do, and imports
// wippy:runtime/funcs.

#include <stdlib.h>
#include "gen/cguest.h"

void exports_cguest_summarize(cguest_list_s32_t *xs, cguest_stats_t *ret) {
    ret->count = (uint32_t)xs->len;
    ret->sum = 0;
    ret->min.is_some = ret->max.is_some = xs->len > 0;
    for (size_t i = 0; i < xs->len; i++) {
        int32_t x = xs->ptr[i];
        ret->sum += x;
        if (i == 0 || x < ret->min.val) ret->min.val = x;
        if (i == 0 || x > ret->max.val) ret->max.val = x;
    }
    ret->mean = xs->len ? (double)ret->sum / (double)xs->len : 0.0;
    cguest_list_s32_free(xs);
}

bool exports_cguest_relay(cguest_string_t *target, cguest_string_t *input, cguest_string_t *ret,
                          cguest_string_t *err) {
    // The answer (or the error) is ours to hand back as it is.
    bool ok = wippy_runtime_funcs_call_string(target, input, ret, err);
    cguest_string_free(target);
    cguest_string_free(input);
    return ok;
}

uint64_t exports_cguest_crunch(uint32_t rounds) {
    uint64_t x = rounds;
    for (uint64_t i = 0; i < (uint64_t)rounds * 1000000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
    return x;
}
