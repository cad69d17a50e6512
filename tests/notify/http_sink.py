#!/usr/bin/python3
"""Loopback HTTP sink for the notify tests: each POST body is checked to be JSON and
written to DIR as NNNNNN.json (NNNNNN.bad if it does not parse), in arrival order. While
DIR/fail exists the sink answers 503 (a webhook endpoint that is up but failing)."""
import argparse
import http.server
import json
import os
import sys
import threading

lock = threading.Lock()
count = 0


def make_handler(directory):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            global count
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if os.path.exists(os.path.join(directory, "fail")):
                self.send_response(503)
                self.end_headers()
                return
            try:
                json.loads(body.decode("utf-8"))
                ext = "json"
            except Exception:
                ext = "bad"
            with lock:
                count += 1
                n = count
            tmp = os.path.join(directory, ".%06d.tmp" % n)
            with open(tmp, "wb") as f:
                f.write(body)
            os.rename(tmp, os.path.join(directory, "%06d.%s" % (n, ext)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a.dir))
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
