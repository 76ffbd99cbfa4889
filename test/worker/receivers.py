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

DIR = sys.argv[2]
lock = threading.Lock()


def smtp():
    # A sink of its own on socketserver: Python 3.12 and later (Debian
    # trixie) have no smtpd module.  It speaks what a client needs to hand
    # over a message (EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET,
    # NOOP, QUIT) and keeps each message as smtpd did: its lines joined by
    # a newline, without the final dot.
    import socketserver

    os.makedirs(os.path.join(DIR, "mail"), exist_ok=True)
    counter = [0]

    def address(arg):
        arg = arg.split(":", 1)[1].strip()
        if arg.startswith("<"):
            arg = arg[1:arg.index(">")]
        return arg.split()[0] if arg else ""

    def keep(mailfrom, rcpttos, data):
        with lock:
            counter[0] += 1
            path = os.path.join(DIR, "mail", "%04d.eml" % counter[0])
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.rename(path + ".tmp", path)
            with open(os.path.join(DIR, "smtp.log"), "a") as f:
                f.write(json.dumps({"from": mailfrom, "to": rcpttos, "file": path}) + "\n")

    class Session(socketserver.StreamRequestHandler):
        def say(self, text):
            self.wfile.write(text.encode() + b"\r\n")
            self.wfile.flush()

        def handle(self):
            mailfrom, rcpttos = None, []
            self.say("220 sink ESMTP")
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.say("250-sink")
                    self.say("250 8BITMIME")
                elif verb == "HELO":
                    self.say("250 sink")
                elif verb == "MAIL":
                    mailfrom, rcpttos = address(cmd), []
                    self.say("250 OK")
                elif verb == "RCPT":
                    rcpttos.append(address(cmd))
                    self.say("250 OK")
                elif verb == "DATA":
                    if mailfrom is None or not rcpttos:
                        self.say("503 need MAIL and RCPT first")
                        continue
                    self.say("354 end with <CR><LF>.<CR><LF>")
                    lines = []
                    while True:
                        d = self.rfile.readline()
                        if not d or d in (b".\r\n", b".\n"):
                            break
                        d = d.rstrip(b"\r\n")
                        lines.append(d[1:] if d.startswith(b".") else d)
                    keep(mailfrom, rcpttos, b"\n".join(lines))
                    mailfrom, rcpttos = None, []
                    self.say("250 OK queued")
                elif verb in ("RSET", "NOOP"):
                    if verb == "RSET":
                        mailfrom, rcpttos = None, []
                    self.say("250 OK")
                elif verb == "QUIT":
                    self.say("221 bye")
                    return
                else:
                    self.say("502 not implemented")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Session)
    with open(os.path.join(DIR, "smtp.port"), "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


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
