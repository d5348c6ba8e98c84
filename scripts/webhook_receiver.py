#!/usr/bin/env python3
"""A tiny webhook receiver for the quick start: prints each alert it receives and appends the
raw JSON to --out. Listens on 127.0.0.1 only."""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


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
                alert = json.loads(body)
                print(f"webhook: received alert {alert.get('id')} [{alert.get('severity')}] "
                      f"{alert.get('summary')}", flush=True)
            except ValueError:
                print("webhook: received a non-JSON body", flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    sys.exit(main())
