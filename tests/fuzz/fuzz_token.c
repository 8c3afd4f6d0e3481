/* SPDX-License-Identifier: MIT */
/* Fuzz the token decoders: text tokens (cashuA/cashuB), the raw binary form, and, for every
 * decoded proof, the NUT-10 secret parser and witness parser. Decoded tokens are re-encoded
 * (v3 and v4) and decoded again: the round trip must succeed and keep the proof count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/cashu_p2pk.h"
#include "cashu/cashu_token.h"

static void check(const cashu_token_t *t) {
    for (size_t i = 0; i < t->nproofs; i++) {
        cashu_p2pk_t p;
        (void)cashu_p2pk_parse(t->proofs[i].secret, &p);
        uint8_t sigs[4][64];
        if (t->proofs[i].witness) (void)cashu_p2pk_witness_sigs(t->proofs[i].witness, sigs, 4);
    }
    for (int v = 3; v <= 4; v++) {
        common_buf_t b = {0};
        int rc = v == 3 ? cashu_token_encode_v3(t, &b) : cashu_token_encode_v4(t, 0, &b);
        if (rc == 0) {
            cashu_token_t t2;
            if (cashu_token_decode((const char *)b.data, b.len, &t2) != 0) abort();
            if (t2.nproofs != t->nproofs) abort();
            cashu_token_free(&t2);
        }
        common_buf_free(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cashu_token_t t;
    if (size > 0 && data[0] == 'c' && size >= 5 && memcmp(data, "crawB", 5) == 0) {
        if (cashu_token_decode_binary(data, size, &t) == 0) {
            check(&t);
            cashu_token_free(&t);
        }
        return 0;
    }
    if (cashu_token_decode((const char *)data, size, &t) == 0) {
        check(&t);
        cashu_token_free(&t);
    }
    /* Also try the payload as raw CBOR (skips the base64 layer to reach deeper states). */
    uint8_t *raw = malloc(size + 5);
    if (!raw) return 0;
    memcpy(raw, "crawB", 5);
    memcpy(raw + 5, data, size);
    if (cashu_token_decode_binary(raw, size + 5, &t) == 0) {
        check(&t);
        cashu_token_free(&t);
    }
    free(raw);
    return 0;
}
