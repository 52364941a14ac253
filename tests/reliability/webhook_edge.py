"""The webhook receiver of ``test_webhooks_e2e``, run as its own process: a Flask app (on werkzeug's threaded
server) with one :class:`~billkit.webhooks.Receiver` per provider, each forwarding what it processes to the
waiting process through a :class:`~billkit.webhooks.Relay`.

    python -m tests.reliability.webhook_edge facturapi=http://127.0.0.1:9000/facturapi billcom=...

Per provider, its credentials come from the environment as for any client (``FACTURAPI_API_KEY``; ``BILL_...``;
its client only verifies here, it sends nothing) and its webhook secret from ``<PROVIDER>_WEBHOOK_SECRET``. Prints
``receiving at URL`` once it listens (its receivers are at ``URL/<provider>``); stops on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from flask import Flask
from werkzeug.serving import make_server

import billkit
from billkit.webhooks import Receiver, Relay


def main(argv: list[str]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app = Flask(__name__)
    clients: list[billkit.Client] = []
    relays: list[Relay] = []
    for arg in argv:
        provider, _, worker_url = arg.partition("=")
        client = billkit.Client(provider)
        relay = Relay(worker_url)
        receiver = Receiver(client, secret=os.environ[f"{provider.upper()}_WEBHOOK_SECRET"], forward=relay)
        app.add_url_rule(f"/{provider}", view_func=receiver.flask_view(), methods=["POST"])
        clients.append(client)
        relays.append(relay)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"receiving at http://127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        for relay in relays:
            relay.close()
        for client in clients:
            client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
