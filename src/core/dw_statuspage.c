/*
 * dw_statuspage.c - the status page (GET /) as one self-contained HTML document.
 *
 * Why this shape:
 * - Clusters are often offline and a status page that needs a CDN shows nothing there, so
 *   the page has no script, font or style sheet from anywhere: the CSS is inline and the
 *   charts are inline SVG that driftwatch draws itself. A charting library vendored from npm
 *   would be tens of kilobytes of JavaScript to audit and update for three kinds of chart
 *   (lines, dots, a grid of cells); drawing them is a few hundred lines of C that the unit
 *   tests read back as DOM.
 * - Pure: the page is a function of the stored reports (the caller reads them from Redis),
 *   so every pod renders the same page and the tests need no server.
 * - The DOM is part of the contract the tests check: every chart is an <svg
 *   data-chart="..."> with one <circle class="point" data-window="<start ms>"> per window
 *   that has the value, heatmap cells are <rect class="cell" data-feature data-window
 *   data-score>, and a drifted feature carries class "drifted" (its row in the latest report,
 *   its heatmap label, its drifted cells).
 * - The heatmap colours each cell by its score relative to the highest score of that feature
 *   over the charted windows (methods have different scales: a PSI of 0.3 and a KS statistic
 *   of 0.3 mean different things), and paints a drifted window red whatever its score. The
 *   exact score is in the cell's tooltip.
 * - Every text that comes from data (model, feature and version names, alert fields) is HTML
 *   escaped; names are configuration, but the page must not be a place where one breaks out.
 */
#include "driftwatch/core/dw_statuspage.h"

#include "driftwatch/core/dw_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

/* Chart geometry (SVG user units = CSS pixels). */
#define SP_W 640     /* chart width */
#define SP_H 160     /* chart height */
#define SP_PAD 28    /* room for the axis labels */
#define SP_CELL 14   /* heatmap cell height */
#define SP_LABEL 140 /* heatmap feature label column */

/* Series colours, cycled (CSS colours). */
static const char *const SP_COLOURS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                         "#8c564b", "#e377c2", "#17becf", "#7f7f7f"};

/* Appends s HTML-escaped (text and attribute values alike). */
static void esc(struct dw_sbuf *sb, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&':
            dw_sbuf_adds(sb, "&amp;");
            break;
        case '<':
            dw_sbuf_adds(sb, "&lt;");
            break;
        case '>':
            dw_sbuf_adds(sb, "&gt;");
            break;
        case '"':
            dw_sbuf_adds(sb, "&quot;");
            break;
        case '\'':
            dw_sbuf_adds(sb, "&#39;");
            break;
        default:
            dw_sbuf_add(sb, p, 1);
        }
    }
}

/* A JSON number as a double, NaN otherwise. */
static double num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_int_t start_of(const json_t *report)
{
    return json_integer_value(json_object_get(report, "window_start_ms"));
}

static int by_start(const void *a, const void *b)
{
    json_int_t x = start_of(*(json_t *const *)a), y = start_of(*(json_t *const *)b);
    return (x > y) - (x < y);
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* A value with 4 significant digits, or "-" for NaN. */
static void fmt_num(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "-");
    } else {
        snprintf(buf, size, "%.4g", v);
    }
}

/* One line series of a chart: values per window index (NaN: no point). */
struct series {
    char name[128];
    double *v;
    int dashed;
    int mark_missing; /* a window without a value gets a hollow "missing" point */
};

/*
 * A line chart over n windows (x: window index) of the series, y from lo to hi. Each value
 * is a <circle class="point">; consecutive values are joined by a polyline.
 */
static void line_chart(struct dw_sbuf *sb, const char *chart, const char *title,
                       json_t *const *reports, size_t n, const struct series *ss, size_t n_ss,
                       double lo, double hi)
{
    dw_sbuf_printf(sb, "<figure><figcaption>%s</figcaption>", title);
    dw_sbuf_printf(sb,
                   "<svg class=\"chart\" data-chart=\"%s\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\" role=\"img\">",
                   chart, SP_W, SP_H, SP_W, SP_H);
    double pw = SP_W - 2 * SP_PAD, ph = SP_H - 2 * SP_PAD;
    dw_sbuf_printf(sb,
                   "<rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%g\" class=\"plot\"/>"
                   "<text x=\"2\" y=\"%d\" class=\"axis\">%.2g</text>"
                   "<text x=\"2\" y=\"%g\" class=\"axis\">%.2g</text>",
                   SP_PAD, SP_PAD, pw, ph, SP_PAD + 4, hi, SP_PAD + ph, lo);
    if (n > 0) {
        char a[40], b[40];
        dw_time_format_rfc3339((int64_t)start_of(reports[0]), a, sizeof(a));
        dw_time_format_rfc3339((int64_t)start_of(reports[n - 1]), b, sizeof(b));
        dw_sbuf_printf(sb,
                       "<text x=\"%d\" y=\"%d\" class=\"axis\">%s</text>"
                       "<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%s</text>",
                       SP_PAD, SP_H - 6, a, SP_W - SP_PAD, SP_H - 6, b);
    }
    double span = hi > lo ? hi - lo : 1.0;
    for (size_t s = 0; s < n_ss; s++) {
        const char *colour = SP_COLOURS[s % DW_ARRAY_SIZE(SP_COLOURS)];
        struct dw_sbuf pts = {0};
        for (size_t i = 0; i < n; i++) {
            if (isnan(ss[s].v[i])) {
                continue;
            }
            double x = SP_PAD + (n > 1 ? pw * (double)i / (double)(n - 1) : pw / 2);
            double y = SP_PAD + ph * (1.0 - (clamp(ss[s].v[i], lo, hi) - lo) / span);
            dw_sbuf_printf(&pts, "%.1f,%.1f ", x, y);
        }
        dw_sbuf_printf(sb,
                       "<polyline class=\"line\" fill=\"none\" stroke=\"%s\" "
                       "stroke-width=\"1.5\"%s points=\"%s\"/>",
                       colour, ss[s].dashed ? " stroke-dasharray=\"4 3\"" : "", pts.s ? pts.s : "");
        dw_sbuf_free(&pts);
        for (size_t i = 0; i < n; i++) {
            double x = SP_PAD + (n > 1 ? pw * (double)i / (double)(n - 1) : pw / 2);
            if (isnan(ss[s].v[i])) {
                if (ss[s].mark_missing) {
                    dw_sbuf_printf(sb,
                                   "<circle class=\"point missing\" cx=\"%.1f\" cy=\"%.1f\" "
                                   "r=\"2.5\" fill=\"none\" stroke=\"#999\" "
                                   "data-window=\"%lld\" data-value=\"-\"><title>no value "
                                   "(not judged: a reference window, or no data)</title></circle>",
                                   x, SP_PAD + ph, (long long)start_of(reports[i]));
                }
                continue;
            }
            double y = SP_PAD + ph * (1.0 - (clamp(ss[s].v[i], lo, hi) - lo) / span);
            char val[32];
            fmt_num(ss[s].v[i], val, sizeof(val));
            dw_sbuf_printf(sb,
                           "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                           "fill=\"%s\" data-window=\"%lld\" data-series=\"",
                           x, y, colour, (long long)start_of(reports[i]));
            esc(sb, ss[s].name);
            dw_sbuf_printf(sb, "\" data-value=\"%s\"><title>", val);
            esc(sb, ss[s].name);
            dw_sbuf_printf(sb, ": %s</title></circle>", val);
        }
    }
    dw_sbuf_adds(sb, "</svg><div class=\"legend\">");
    for (size_t s = 0; s < n_ss; s++) {
        dw_sbuf_printf(sb, "<span style=\"color:%s\">&#9632; ",
                       SP_COLOURS[s % DW_ARRAY_SIZE(SP_COLOURS)]);
        esc(sb, ss[s].name);
        dw_sbuf_adds(sb, "</span> ");
    }
    dw_sbuf_adds(sb, "</div></figure>");
}

/* Accuracy per version (final reports) and estimated (close reports with an estimate). */
static void accuracy_chart(struct dw_sbuf *sb, json_t *const *reports, size_t n)
{
    json_t *names = json_object(); /* series name -> index */
    struct series *ss = NULL;
    size_t n_ss = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = reports[i];
        const char *k;
        json_t *v;
        struct {
            const char *name;
            double value;
            int dashed;
        } found[64];
        size_t n_found = 0;
        if (json_is_true(json_object_get(r, "final"))) {
            found[n_found].name = "realised (all)";
            found[n_found].dashed = 0;
            found[n_found++].value =
                num(json_object_get(json_object_get(r, "performance"), "accuracy"));
            json_object_foreach(json_object_get(r, "versions"), k, v)
            {
                if (n_found < DW_ARRAY_SIZE(found) - 1) {
                    found[n_found].name = k;
                    found[n_found].dashed = 0;
                    found[n_found++].value =
                        num(json_object_get(json_object_get(v, "performance"), "accuracy"));
                }
            }
        }
        const json_t *est = json_object_get(r, "estimated");
        const char *st = json_string_value(json_object_get(est, "status"));
        if (st && strcmp(st, "ready") == 0) {
            found[n_found].name = "estimated (all)";
            found[n_found].dashed = 1;
            found[n_found++].value = num(json_object_get(est, "accuracy"));
        }
        for (size_t f = 0; f < n_found; f++) {
            char name[128];
            if (f > 0 && !found[f].dashed && strcmp(found[f].name, "realised (all)") != 0) {
                snprintf(name, sizeof(name), "realised %s", found[f].name);
            } else {
                snprintf(name, sizeof(name), "%s", found[f].name);
            }
            json_t *idx = json_object_get(names, name);
            size_t s;
            if (!idx) {
                s = n_ss++;
                ss = dw_realloc(ss, n_ss * sizeof(*ss));
                snprintf(ss[s].name, sizeof(ss[s].name), "%s", name);
                ss[s].dashed = found[f].dashed;
                ss[s].mark_missing = 0;
                ss[s].v = dw_malloc(n * sizeof(double));
                for (size_t j = 0; j < n; j++) {
                    ss[s].v[j] = NAN;
                }
                json_object_set_new(names, name, json_integer((json_int_t)s));
            } else {
                s = (size_t)json_integer_value(idx);
            }
            ss[s].v[i] = found[f].value;
        }
    }
    line_chart(sb, "accuracy", "Accuracy per window: realised per version (final), estimated",
               reports, n, ss, n_ss, 0.0, 1.0);
    for (size_t s = 0; s < n_ss; s++) {
        free(ss[s].v);
    }
    free(ss);
    json_decref(names);
}

static void drift_share_chart(struct dw_sbuf *sb, json_t *const *reports, size_t n)
{
    struct series s = {.name = "dataset drift share", .dashed = 0, .mark_missing = 1};
    s.v = dw_malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        s.v[i] = num(json_object_get(json_object_get(reports[i], "drift"), "share"));
    }
    line_chart(sb, "drift-share", "Dataset drift share (share of features drifted)", reports, n, &s,
               1, 0.0, 1.0);
    free(s.v);
}

/* The latest report's `drift` of feature, as 1 drifted, 0 not, -1 unknown. */
static int drifted(const json_t *report, const char *feature)
{
    const json_t *d =
        json_object_get(json_object_get(json_object_get(report, "features"), feature), "drift");
    return json_is_boolean(d) ? json_is_true(d) : -1;
}

/* Features x windows of drift scores. */
static void heatmap(struct dw_sbuf *sb, json_t *const *reports, size_t n)
{
    json_t *features = json_object(); /* name -> 1, in first-seen order */
    for (size_t i = 0; i < n; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(reports[i], "features"), k, v)
        {
            json_object_set_new(features, k, json_true());
        }
    }
    size_t nf = json_object_size(features);
    double cw = n > 0 ? (double)(SP_W - SP_LABEL) / (double)n : 0;
    dw_sbuf_adds(sb, "<figure><figcaption>Feature drift score per window (colour: score "
                     "relative to the feature's highest; red: drifted)</figcaption>");
    dw_sbuf_printf(sb,
                   "<svg class=\"chart heatmap\" data-chart=\"heatmap\" width=\"%d\" "
                   "height=\"%zu\" viewBox=\"0 0 %d %zu\" role=\"img\">",
                   SP_W, nf * SP_CELL + 4, SP_W, nf * SP_CELL + 4);
    const json_t *latest = n ? reports[n - 1] : NULL;
    size_t row = 0;
    const char *f;
    json_t *unused;
    json_object_foreach(features, f, unused)
    {
        double max = 0;
        for (size_t i = 0; i < n; i++) {
            double sc = num(json_object_get(
                json_object_get(json_object_get(reports[i], "features"), f), "score"));
            if (!isnan(sc) && fabs(sc) > max) {
                max = fabs(sc);
            }
        }
        double y = (double)(row * SP_CELL);
        dw_sbuf_printf(sb, "<text x=\"0\" y=\"%.1f\" class=\"flabel%s\" data-feature=\"", y + 11,
                       latest && drifted(latest, f) == 1 ? " drifted" : "");
        esc(sb, f);
        dw_sbuf_adds(sb, "\">");
        esc(sb, f);
        dw_sbuf_adds(sb, "</text>");
        for (size_t i = 0; i < n; i++) {
            const json_t *fe = json_object_get(json_object_get(reports[i], "features"), f);
            double sc = num(json_object_get(fe, "score"));
            int d = drifted(reports[i], f);
            char fill[32], val[32];
            fmt_num(sc, val, sizeof(val));
            if (isnan(sc)) {
                snprintf(fill, sizeof(fill), "#eeeeee");
            } else if (d == 1) {
                snprintf(fill, sizeof(fill), "#d62728");
            } else {
                double t = max > 0 ? fabs(sc) / max : 0;
                int c = (int)lround(235.0 - 150.0 * t); /* light to mid blue */
                snprintf(fill, sizeof(fill), "rgb(%d,%d,245)", c, c);
            }
            dw_sbuf_printf(sb,
                           "<rect class=\"cell%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                           "height=\"%d\" fill=\"%s\" data-window=\"%lld\" data-score=\"%s\" "
                           "data-feature=\"",
                           d == 1 ? " drifted" : "", SP_LABEL + cw * (double)i, y,
                           cw > 1 ? cw - 1 : cw, SP_CELL - 1, fill, (long long)start_of(reports[i]),
                           val);
            esc(sb, f);
            dw_sbuf_adds(sb, "\"><title>");
            esc(sb, f);
            dw_sbuf_printf(sb, " %lld: %s%s</title></rect>", (long long)start_of(reports[i]), val,
                           d == 1 ? " (drifted)" : "");
        }
        row++;
    }
    dw_sbuf_adds(sb, "</svg></figure>");
    json_decref(features);
}

/* The firing alerts of a model, as a list. */
static void firing_list(struct dw_sbuf *sb, const json_t *firing)
{
    size_t i;
    json_t *a;
    if (json_array_size(firing) == 0) {
        dw_sbuf_adds(sb, "<p class=\"ok\">No alert firing.</p>");
        return;
    }
    dw_sbuf_adds(sb, "<ul class=\"firing\">");
    json_array_foreach(firing, i, a)
    {
        char val[32], thr[32];
        fmt_num(num(json_object_get(a, "value")), val, sizeof(val));
        fmt_num(num(json_object_get(a, "threshold")), thr, sizeof(thr));
        dw_sbuf_adds(sb, "<li class=\"alert\"><b>");
        esc(sb, json_string_value(json_object_get(a, "rule")));
        dw_sbuf_adds(sb, "</b> ");
        esc(sb, json_string_value(json_object_get(a, "severity")));
        if (json_string_value(json_object_get(a, "feature"))) {
            dw_sbuf_adds(sb, " feature ");
            esc(sb, json_string_value(json_object_get(a, "feature")));
        }
        dw_sbuf_printf(sb, ": value %s, threshold %s, since ", val, thr);
        esc(sb, json_string_value(json_object_get(a, "starts_at")));
        dw_sbuf_adds(sb, "</li>");
    }
    dw_sbuf_adds(sb, "</ul>");
}

/* The latest report: its features (drifted ones highlighted) and the whole document. */
static void latest_report(struct dw_sbuf *sb, const json_t *r)
{
    char when[40];
    dw_time_format_rfc3339((int64_t)start_of(r), when, sizeof(when));
    dw_sbuf_printf(sb, "<h3>Latest report: window %s (%s)</h3>", when,
                   json_is_true(json_object_get(r, "final")) ? "final" : "close");
    dw_sbuf_adds(sb, "<table class=\"features\"><tr><th>feature</th><th>method</th>"
                     "<th>score</th><th>drift</th></tr>");
    const char *f;
    json_t *fe;
    json_object_foreach(json_object_get(r, "features"), f, fe)
    {
        char val[32];
        int d = drifted(r, f);
        fmt_num(num(json_object_get(fe, "score")), val, sizeof(val));
        dw_sbuf_printf(sb, "<tr class=\"feature%s\" data-feature=\"", d == 1 ? " drifted" : "");
        esc(sb, f);
        dw_sbuf_adds(sb, "\"><td>");
        esc(sb, f);
        dw_sbuf_adds(sb, "</td><td>");
        esc(sb, json_string_value(json_object_get(fe, "method")));
        dw_sbuf_printf(sb, "</td><td>%s</td><td>%s</td></tr>", val,
                       d == 1   ? "drifted"
                       : d == 0 ? "no"
                                : "-");
    }
    dw_sbuf_adds(sb, "</table><details><summary>Report JSON</summary><pre>");
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
    esc(sb, text);
    free(text);
    dw_sbuf_adds(sb, "</pre></details>");
}

/* A verdict word of the latest report for the summary table. */
static const char *verdict(const json_t *r)
{
    if (!r) {
        return "no report yet";
    }
    return json_is_true(json_object_get(json_object_get(r, "drift"), "dataset")) ? "drift"
                                                                                 : "no drift";
}

static void model_row(struct dw_sbuf *sb, const json_t *m, const json_t *latest)
{
    const char *name = json_string_value(json_object_get(m, "name"));
    char when[40] = "-", share[32], acc[32];
    fmt_num(latest ? num(json_object_get(json_object_get(latest, "drift"), "share")) : NAN, share,
            sizeof(share));
    fmt_num(latest ? num(json_object_get(json_object_get(latest, "performance"), "accuracy")) : NAN,
            acc, sizeof(acc));
    if (latest) {
        dw_time_format_rfc3339((int64_t)start_of(latest), when, sizeof(when));
    }
    size_t firing = json_array_size(json_object_get(m, "firing"));
    dw_sbuf_adds(sb, "<tr class=\"model\" data-model=\"");
    esc(sb, name);
    dw_sbuf_adds(sb, "\"><td><a href=\"#model-");
    esc(sb, name);
    dw_sbuf_adds(sb, "\">");
    esc(sb, name);
    dw_sbuf_printf(
        sb,
        "</a></td><td>%s</td><td>%s</td><td class=\"verdict\">%s</td><td>%s</td>"
        "<td>%s</td><td class=\"%s\">%zu</td></tr>",
        when, latest ? (json_is_true(json_object_get(latest, "final")) ? "final" : "close") : "-",
        verdict(latest), share, acc, firing ? "firing" : "ok", firing);
}

static const char *const SP_STYLE =
    "body{font-family:sans-serif;margin:1em 2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    "tr.drifted td,.flabel.drifted{color:#b00;font-weight:bold}"
    "tr.drifted{background:#fde0e0}"
    "td.firing,li.alert{color:#b00;font-weight:bold}"
    ".plot{fill:#fafafa;stroke:#ddd}.axis,.flabel{font-size:10px;fill:#555}"
    ".flabel.drifted{fill:#b00}rect.cell.drifted{stroke:#600;stroke-width:1}"
    "figure{margin:.5em 0}figcaption{font-size:12px;color:#555}"
    "pre{background:#f4f4f4;padding:.5em;max-height:30em;overflow:auto}"
    "section.model{border-top:2px solid #ddd;margin-top:1.5em}";

char *dw_statuspage_render(const json_t *page)
{
    struct dw_sbuf sb = {0};
    char gen[40];
    dw_time_format_rfc3339((int64_t)json_integer_value(json_object_get(page, "generated_ms")), gen,
                           sizeof(gen));
    dw_sbuf_adds(&sb, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<title>driftwatch ");
    esc(&sb, json_string_value(json_object_get(page, "group")));
    dw_sbuf_printf(&sb, "</title><style>%s</style></head><body><h1>driftwatch: ", SP_STYLE);
    esc(&sb, json_string_value(json_object_get(page, "group")));
    dw_sbuf_printf(&sb,
                   "</h1><p>Generated %s from the reports in Redis (any pod shows the same). "
                   "JSON: <a href=\"api/v1/models\">api/v1/models</a>.</p>",
                   gen);
    const json_t *models = json_object_get(page, "models");
    size_t n_models = json_array_size(models);
    json_t ***sorted = dw_calloc(n_models + 1, sizeof(*sorted));
    size_t *counts = dw_calloc(n_models + 1, sizeof(*counts));
    for (size_t mi = 0; mi < n_models; mi++) {
        const json_t *reports = json_object_get(json_array_get(models, mi), "reports");
        counts[mi] = json_array_size(reports);
        sorted[mi] = dw_calloc(counts[mi] + 1, sizeof(**sorted));
        for (size_t i = 0; i < counts[mi]; i++) {
            sorted[mi][i] = json_array_get(reports, i);
        }
        qsort(sorted[mi], counts[mi], sizeof(**sorted), by_start);
    }

    dw_sbuf_adds(&sb, "<h2>Models</h2><table class=\"models\"><tr><th>model</th>"
                      "<th>latest window</th><th>stage</th><th>verdict</th>"
                      "<th>drift share</th><th>accuracy</th><th>alerts firing</th></tr>");
    for (size_t mi = 0; mi < n_models; mi++) {
        model_row(&sb, json_array_get(models, mi), counts[mi] ? sorted[mi][counts[mi] - 1] : NULL);
    }
    dw_sbuf_adds(&sb, "</table>");

    for (size_t mi = 0; mi < n_models; mi++) {
        const json_t *m = json_array_get(models, mi);
        const char *name = json_string_value(json_object_get(m, "name"));
        dw_sbuf_adds(&sb, "<section class=\"model\" id=\"model-");
        esc(&sb, name);
        dw_sbuf_adds(&sb, "\" data-model=\"");
        esc(&sb, name);
        dw_sbuf_adds(&sb, "\"><h2>");
        esc(&sb, name);
        dw_sbuf_adds(&sb, "</h2>");
        const char *err = json_string_value(json_object_get(m, "error"));
        if (err) {
            dw_sbuf_adds(&sb, "<p class=\"error\">");
            esc(&sb, err);
            dw_sbuf_adds(&sb, "</p>");
        }
        firing_list(&sb, json_object_get(m, "firing"));
        if (counts[mi] == 0) {
            dw_sbuf_adds(&sb, "<p>No window report yet.</p></section>");
            continue;
        }
        dw_sbuf_printf(&sb, "<p>Last %zu windows.</p>", counts[mi]);
        accuracy_chart(&sb, sorted[mi], counts[mi]);
        drift_share_chart(&sb, sorted[mi], counts[mi]);
        heatmap(&sb, sorted[mi], counts[mi]);
        latest_report(&sb, sorted[mi][counts[mi] - 1]);
        dw_sbuf_adds(&sb, "</section>");
    }
    dw_sbuf_adds(&sb, "</body></html>\n");
    for (size_t mi = 0; mi < n_models; mi++) {
        free(sorted[mi]);
    }
    free(sorted);
    free(counts);
    return dw_sbuf_take(&sb);
}
