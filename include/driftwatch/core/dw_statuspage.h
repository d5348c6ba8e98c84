/*
 * dw_statuspage.h - the status page (GET /): one self-contained HTML document, charts as
 * inline SVG, rendered from the stored reports (pure: the caller reads them from Redis).
 */
#ifndef DW_STATUSPAGE_H
#define DW_STATUSPAGE_H

#include <jansson.h>
#include <stdint.h>

/* Windows charted per model by default (count): the reports API pages through the rest. */
#define DW_STATUSPAGE_WINDOWS 48

/**
 * @brief Renders the page.
 * @param page {"group": text, "generated_ms": int, "models": [{"name": text,
 *        "firing": [alert, ...] (the model's last notification with firing alerts, may be
 *        absent), "reports": [report, ...] (the model's latest window reports, any order),
 *        "error": text (when its reports could not be read, shown instead)}]}.
 * @returns the HTML (malloc'd, never NULL).
 */
char *dw_statuspage_render(const json_t *page);

#endif
