/*
 * fuzz_decode_prediction.c - dw_decode_prediction() over arbitrary bytes (see dw_fuzz.h).
 *
 * Every input goes through both decoders of decode_fixture.h (non-finite tokens counted and
 * default paths; strict JSON, custom paths and a shallow depth limit). A success must keep
 * every promise of dw_decode.h (id length, configured model, class text, score range, feature
 * kinds by type) and every string it returns must be readable; a failure must name a reason
 * and say why. The same bytes are then decoded as a label, so that one decoder alternates
 * between both kinds of message as in the consumer loop.
 */
#include "decode_fixture.h"

#define KAFKA_TS 1700000000555LL /* milliseconds; the Kafka timestamp of every message */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_decoders *d = fuzz_decoders();
    for (int i = 0; i < 2; i++) {
        char err[512] = "";
        enum dw_bad_reason r =
            dw_decode_prediction(d->dec[i], data, size, KAFKA_TS, d->p[i], err, sizeof(err));
        if (r == DW_BAD_NONE) {
            fuzz_check_prediction(&d->cfg[i], d->p[i]);
        } else {
            fuzz_check_failure(r, err);
        }
        struct dw_label l;
        r = dw_decode_label(d->dec[i], data, size, KAFKA_TS, &l, err, sizeof(err));
        if (r == DW_BAD_NONE) {
            fuzz_check_label(&l);
        }
    }
    return 0;
}

void dw_fuzz_seeds(const char *dir)
{
    fuzz_decode_seeds(dir);
}
