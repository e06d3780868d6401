"""The partner's side: verifies each webhook's Standard Webhooks signature, then prints the
order. ``--refuse`` answers 422 to everything (a partner that broke), which core treats as
terminal: the job is discarded at once."""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8765)
parser.add_argument("--refuse", action="store_true", help="answer 422 to every request")
args = parser.parse_args()
webhook = Webhook(os.environ["PARTNER_WHSEC"])


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            message = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError:
            self.answer(401, "bad signature")
            return
        if args.refuse:
            self.answer(422, "refused")
            return
        print(f"verified {self.headers['webhook-id']}: order {message['data']['id']}", flush=True)
        self.answer(200, "ok")

    def answer(self, status: int, text: str) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"status": text}).encode())

    def log_message(self, *args: object) -> None:
        pass


print(f"partner listening on 127.0.0.1:{args.port}", flush=True)
HTTPServer(("127.0.0.1", args.port), Receiver).serve_forever()
