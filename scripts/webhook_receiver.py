#!/usr/bin/env python3
"""A tiny webhook receiver for the quick start: prints one line per alert of each notification
it receives (the generic webhook payload of docs/alerting-payloads.md) and appends the raw JSON
body to --out. Listens on 127.0.0.1 only."""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def fmt_value(v):
    """An alert's value or threshold as text: numbers with %.6g, booleans, none."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return f"{v:.6g}"
    return str(v)


def window_span(start, end):
    """"2026-01-01T00:06:00Z-00:07:00Z": the end without its date when it is the start's."""
    start, end = str(start), str(end)
    if len(start) > 11 and start[:11] == end[:11] and start[10] == "T":
        end = end[11:]
    return f"{start}-{end}"


def alert_lines(note):
    """One line per alert: status, severity, rule, feature, model, window, stage, value."""
    test = "[TEST] " if note.get("type") == "driftwatch.test" else ""
    model = note.get("model")
    window = window_span(note.get("window_start"), note.get("window_end"))
    lines = []
    for a in note.get("alerts") or []:
        what = a.get("rule") or "?"
        if a.get("feature") is not None:
            what += f" {a['feature']}"
        repeat = " (repeat)" if a.get("repeat") else ""
        lines.append(
            f"{test}{str(a.get('status', '?')).upper()} [{a.get('severity')}] {what}{repeat}: "
            f"model {model}, window {window} ({note.get('stage')}), "
            f"value {fmt_value(a.get('value'))}, threshold {fmt_value(a.get('threshold'))}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with open(args.out, "ab") as f:
                f.write(body + b"\n")
            try:
                note = json.loads(body)
            except ValueError:
                note = None
            if isinstance(note, dict) and isinstance(note.get("alerts"), list):
                nid = self.headers.get("webhook-id") or note.get("id")
                lines = alert_lines(note)
                print(f"webhook: notification {nid}: {len(lines)} alert(s)", flush=True)
                for line in lines:
                    print(f"webhook:   {line}", flush=True)
            else:
                print("webhook: received a body that is not a driftwatch notification",
                      flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    sys.exit(main())
