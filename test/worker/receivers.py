"""The delivery worker test's receivers (test/worker/run.sh).

  receivers.py smtp DIR     an SMTP sink: each message to DIR/mail/<n>.eml
  receivers.py http DIR     a webhook receiver: every request a line of
                            DIR/http.log (JSON); the secret in DIR/secret

Each writes the port it listens on to DIR/<mode>.port.  The webhook
receiver checks every signature (Billing-Signature: t=<unix>,v1=<hex of
HMAC-SHA256(secret, "<t>.<body>")>, t within five minutes; 401 if not) and
deduplicates by Billing-Event-Id, as a receiver should.  Its paths: /good
answers 200; /flaky 503 to the first two requests of an event, then 200;
/dead always 500; /card 200 with a card number in its answer (which
billing must not store); /slow waits 2.5 seconds before answering the first
request of an event (so that the test can kill the worker meanwhile).
"""
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import warnings

DIR = sys.argv[2]
lock = threading.Lock()


def smtp():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore
    import smtpd

    os.makedirs(os.path.join(DIR, "mail"), exist_ok=True)
    counter = [0]

    class Sink(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kw):
            counter[0] += 1
            path = os.path.join(DIR, "mail", "%04d.eml" % counter[0])
            with open(path + ".tmp", "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
            os.rename(path + ".tmp", path)
            with open(os.path.join(DIR, "smtp.log"), "a") as f:
                f.write(json.dumps({"from": mailfrom, "to": rcpttos, "file": path}) + "\n")
            return None

    server = Sink(("127.0.0.1", 0), None, decode_data=False)
    with open(os.path.join(DIR, "smtp.port"), "w") as f:
        f.write(str(server.socket.getsockname()[1]))
    asyncore.loop()


def http():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    secret = open(os.path.join(DIR, "secret"), "rb").read().strip()
    seen = {}      # (path, event id) -> requests
    processed = set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, text):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text.encode())

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            event = self.headers.get("Billing-Event-Id", "")
            sig = self.headers.get("Billing-Signature", "")
            parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
            ok = False
            try:
                t = int(parts.get("t", ""))
                want = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, parts.get("v1", "")) and abs(time.time() - t) < 300
            except ValueError:
                pass
            try:
                doc = json.loads(body)
                body_ok = str(doc.get("id")) == event
            except ValueError:
                body_ok = False
            path = self.path
            with lock:
                n = seen.get((path, event), 0) + 1
                seen[(path, event)] = n
            entry = {"path": path, "event": event, "n": n, "sig_ok": ok, "body_ok": body_ok,
                     "type": self.headers.get("Billing-Event-Type"),
                     "attempt": self.headers.get("Billing-Delivery-Attempt")}
            status, text = 200, "ok"
            if not ok:
                status, text = 401, "bad signature"
            elif path == "/flaky" and n <= 2:
                status, text = 503, "try later"
            elif path == "/dead":
                status, text = 500, "broken"
            elif path == "/card":
                status, text = 200, "paid with 4242 4242 4242 4242"
            else:
                with lock:
                    dup = (path, event) in processed
                    processed.add((path, event))
                entry["duplicate"] = dup
                if not dup:
                    with open(os.path.join(DIR, "processed.log"), "a") as f:
                        f.write(json.dumps({"path": path, "event": event}) + "\n")
                if path == "/slow" and n == 1:
                    entry["status"] = "sleeping"
                    with open(os.path.join(DIR, "http.log"), "a") as f:
                        f.write(json.dumps(entry) + "\n")
                    time.sleep(2.5)
            entry["status"] = status
            with open(os.path.join(DIR, "http.log"), "a") as f:
                f.write(json.dumps(entry) + "\n")
            try:
                self.answer(status, text)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(DIR, "http.port"), "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


{"smtp": smtp, "http": http}[sys.argv[1]]()
