/*
 * fuzz_decode_label.c - dw_decode_label() over arbitrary bytes (see dw_fuzz.h).
 *
 * Both decoders of decode_fixture.h (default paths with non-finite tokens counted; strict
 * JSON with the label and its timestamp at custom paths). A success must give an id of
 * 1..DW_ID_MAX readable bytes and a class of at most DW_CLASS_MAX bytes, NUL-terminated, whose
 * number (when it is one) is finite; a failure must name a reason and say why. The label is
 * decoded twice, the second time after the document was reset, and must come out the same.
 */
#include "decode_fixture.h"

#define KAFKA_TS 1700000000555LL /* milliseconds; the Kafka timestamp of every message */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_decoders *d = fuzz_decoders();
    for (int i = 0; i < 2; i++) {
        char err[512] = "";
        struct dw_label l;
        enum dw_bad_reason r =
            dw_decode_label(d->dec[i], data, size, KAFKA_TS, &l, err, sizeof(err));
        if (r != DW_BAD_NONE) {
            fuzz_check_failure(r, err);
            continue;
        }
        fuzz_check_label(&l);
        struct dw_class first = l.label;
        int64_t ts = l.ts_ms;
        dw_decoder_reset(d->dec[i]);
        fuzz_check(dw_decode_label(d->dec[i], data, size, KAFKA_TS, &l, err, sizeof(err)) ==
                       DW_BAD_NONE,
                   "the same label decoded twice gave two answers");
        fuzz_check(l.ts_ms == ts && l.label.len == first.len &&
                       memcmp(l.label.text, first.text, first.len) == 0 &&
                       l.label.is_num == first.is_num,
                   "the same label decoded twice gave two values");
    }
    return 0;
}

void dw_fuzz_seeds(const char *dir)
{
    fuzz_decode_seeds(dir);
}
