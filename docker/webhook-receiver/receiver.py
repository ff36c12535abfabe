#!/usr/bin/env python3
"""A callbackd webhook receiver that feeds a helpdesk: it opens a ticket when a callback
is accepted (or declined by all, or expired, or ignored as a duplicate) and adds an
internal comment to that ticket when the customer did not answer.

It checks each delivery's signature, drops repeats by their idempotency key, and keeps
the callback id -> ticket id map in a small JSON file. The helpdesk calls are Zendesk's
ticket API; change `open_ticket` and `add_comment` for another one.

    CALLBACKD_SECRET=... HELPDESK_URL=https://example.zendesk.com HELPDESK_TOKEN=... \
        python3 receiver.py 8090

Standard library only. Answering anything but 2xx makes callbackd retry.
"""
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["CALLBACKD_SECRET"].encode()
HELPDESK = os.environ.get("HELPDESK_URL", "").rstrip("/")
TOKEN = os.environ.get("HELPDESK_TOKEN", "")
STATE = os.environ.get("RECEIVER_STATE", "receiver-state.json")
TOLERANCE = 300  # seconds a signature stays good: replayed old requests are refused
# One delivery at a time touches the state file (callbackd sends several callbacks at once).
LOCK = threading.Lock()


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"seen": [], "tickets": {}}


def save(state):
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(STATE + ".tmp", STATE)


def verified(header, body):
    """`t=<unix>,v1=<hex>`: HMAC-SHA256 of "<t>.<body>" with the webhook's secret."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, sig = parts.get("t", ""), parts.get("v1", "")
    if not t.isdigit() or abs(time.time() - int(t)) > TOLERANCE:
        return False
    mac = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, sig)


def helpdesk(method, path, payload):
    req = urllib.request.Request(
        HELPDESK + path, method=method, data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def open_ticket(event):
    body = {"ticket": {"subject": event["subject"], "comment": {"body": event["comment"]},
                       "external_id": event["callback_id"],
                       "requester": {"phone": event.get("number", "")}}}
    return helpdesk("POST", "/api/v2/tickets.json", body)["ticket"]["id"]


def add_comment(ticket, event):
    body = {"ticket": {"comment": {"body": event["comment"], "public": False}}}
    helpdesk("PUT", f"/api/v2/tickets/{ticket}.json", body)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verified(self.headers.get("X-Callbackd-Signature", ""), body):
            return self.answer(401)
        event = json.loads(body)
        with LOCK:
            state = load()
            if event["idempotency_key"] in state["seen"]:
                return self.answer(200)  # a repeat of one already handled
            ticket = state["tickets"].get(event["callback_id"])
            if event["action"] == "open_ticket" and ticket is None:
                state["tickets"][event["callback_id"]] = open_ticket(event)
            elif event["action"] == "add_comment" and ticket is not None:
                add_comment(ticket, event)
            state["seen"] = (state["seen"] + [event["idempotency_key"]])[-10000:]
            save(state)
        self.answer(200)

    def answer(self, status):
        self.send_response(status)
        self.end_headers()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8090
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
