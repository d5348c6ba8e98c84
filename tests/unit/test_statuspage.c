/*
 * test_statuspage.c - the status page's HTML: one point per window in the drift-share chart
 * (hollow where the window has no share), the accuracy series per version and estimated,
 * heatmap cells and the drifted feature marked, firing alerts, names escaped, nothing
 * external, a model without reports or with a read error.
 */
#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_statuspage.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dw_test.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Occurrences of part in text. */
static size_t count(const char *text, const char *part)
{
    size_t n = 0;
    for (const char *p = strstr(text, part); p; p = strstr(p + 1, part)) {
        n++;
    }
    return n;
}

/* The text of the <svg> whose data-chart is chart (malloc'd). */
static char *chart(const char *html, const char *name)
{
    char attr[64];
    snprintf(attr, sizeof(attr), "data-chart=\"%s\"", name);
    const char *start = strstr(html, attr);
    assert_non_null(start);
    const char *end = strstr(start, "</svg>");
    assert_non_null(end);
    char *out = dw_malloc((size_t)(end - start) + 1);
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return out;
}

/* Three windows given out of order: a reference window (no share), a final one, a close one
 * whose feature `a<b>` drifted; the model's name needs escaping. */
static const char *const PAGE =
    "{\"group\":\"g&1\",\"generated_ms\":0,\"models\":["
    "{\"name\":\"m<script>\",\"firing\":[{\"rule\":\"feature_drift\",\"feature\":\"a<b>\","
    "\"severity\":\"warning\",\"value\":0.3,\"threshold\":0.1,\"starts_at\":\"t\"}],"
    "\"reports\":["
    "{\"window_start_ms\":180000,\"final\":false,\"performance\":{\"accuracy\":0.5},"
    "\"estimated\":{\"status\":\"ready\",\"accuracy\":0.7},"
    "\"features\":{\"a<b>\":{\"method\":\"psi\",\"score\":0.3,\"drift\":true},"
    "\"c\":{\"method\":\"js\",\"score\":0.01,\"drift\":false}},"
    "\"drift\":{\"share\":0.5,\"dataset\":true}},"
    "{\"window_start_ms\":60000,\"final\":true,\"performance\":{\"accuracy\":0.9},"
    "\"versions\":{\"1.0\":{\"performance\":{\"accuracy\":0.95}},"
    "\"2.0\":{\"performance\":{\"accuracy\":0.6}}},"
    "\"features\":null,\"drift\":{\"share\":null,\"dataset\":false}},"
    "{\"window_start_ms\":120000,\"final\":true,\"performance\":{\"accuracy\":0.8},"
    "\"versions\":{\"1.0\":{\"performance\":{\"accuracy\":0.85}}},"
    "\"features\":{\"a<b>\":{\"method\":\"psi\",\"score\":0.05,\"drift\":false},"
    "\"c\":{\"method\":\"js\",\"score\":0.02,\"drift\":false}},"
    "\"drift\":{\"share\":0.0,\"dataset\":false}}]},"
    "{\"name\":\"empty\",\"reports\":[]},"
    "{\"name\":\"broken\",\"error\":\"redis: cannot read the reports\",\"reports\":[]}]}";

static void test_render(void **state)
{
    json_t *page = json_loads(PAGE, 0, NULL);
    assert_non_null(page);
    char *html = dw_statuspage_render(page);

    /* self-contained and escaped */
    assert_int_equal(count(html, "<script"), 0);
    assert_int_equal(count(html, "http://"), 0);
    assert_int_equal(count(html, "https://"), 0);
    assert_contains(html, "m&lt;script&gt;");
    assert_contains(html, "driftwatch g&amp;1");

    /* drift share: a point per window in window order, the reference window hollow */
    char *share = chart(html, "drift-share");
    assert_int_equal(count(share, "class=\"point"), 3);
    assert_int_equal(count(share, "class=\"point missing\""), 1);
    const char *w1 = strstr(share, "data-window=\"60000\"");
    const char *w2 = strstr(share, "data-window=\"120000\"");
    const char *w3 = strstr(share, "data-window=\"180000\"");
    assert_true(w1 && w2 && w3 && w1 < w2 && w2 < w3);
    free(share);

    /* accuracy: realised over finals, per version, estimated where ready */
    char *acc = chart(html, "accuracy");
    assert_int_equal(count(acc, "data-series=\"realised (all)\""), 2);
    assert_int_equal(count(acc, "data-series=\"realised 1.0\""), 2);
    assert_int_equal(count(acc, "data-series=\"realised 2.0\""), 1);
    assert_int_equal(count(acc, "data-series=\"estimated (all)\""), 1);
    assert_int_equal(count(acc, "missing"), 0);
    free(acc);

    /* heatmap: 2 features x 3 windows, one drifted cell, the feature's label marked */
    char *heat = chart(html, "heatmap");
    assert_int_equal(count(heat, "<rect class=\"cell"), 6);
    assert_int_equal(count(heat, "<rect class=\"cell drifted\""), 1);
    assert_contains(heat, "class=\"flabel drifted\" data-feature=\"a&lt;b&gt;\"");
    assert_contains(heat, "class=\"flabel\" data-feature=\"c\"");
    free(heat);

    /* latest report (the close one): the drifted feature's row; the firing alert; verdict */
    assert_contains(html, "<tr class=\"feature drifted\" data-feature=\"a&lt;b&gt;\">");
    assert_contains(html, "<tr class=\"feature\" data-feature=\"c\">");
    assert_contains(html, "<li class=\"alert\"><b>feature_drift</b> warning feature a&lt;b&gt;");
    assert_contains(html, "<td class=\"verdict\">drift</td>");
    assert_contains(html, "Latest report: window 1970-01-01T00:03:00Z (close)");

    /* the empty model and the one that could not be read */
    assert_contains(html, "<td class=\"verdict\">no report yet</td>");
    assert_contains(html, "<p class=\"error\">redis: cannot read the reports</p>");
    assert_int_equal(count(html, "<section class=\"model\""), 3);

    free(html);
    json_decref(page);
}

/* No models at all: a page that says so, not a crash. */
static void test_no_models(void **state)
{
    json_t *page =
        json_pack("{s:s,s:I,s:[]}", "group", "g", "generated_ms", (json_int_t)0, "models");
    char *html = dw_statuspage_render(page);
    assert_contains(html, "<table class=\"models\">");
    assert_int_equal(count(html, "<section"), 0);
    free(html);
    json_decref(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_no_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
