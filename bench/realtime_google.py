"""Realtime delivery through Google Pub/Sub: gateway -> Pub/Sub -> scheduler, separate processes.

    python bench/realtime_google.py [--rate 1000] [--seconds 10] [--connections 32] [--emulator 127.0.0.1:8085]

Needs ``core-plugin-google`` installed and the official Pub/Sub emulator (``python
.ci/services.py google`` starts one on 127.0.0.1:8085). Runs :mod:`realtime_broker` with a
fresh topic prefix; the emulator keeps its topics and subscriptions in memory only, so nothing
is left behind once it stops. The figures are the emulator's, not Google's.
"""

from __future__ import annotations

import argparse
import secrets

from realtime_broker import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emulator", default="127.0.0.1:8085", help="host:port of the Pub/Sub emulator")
    parser.add_argument("--project", default="core-bench", help="the Pub/Sub project")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    args = parser.parse_args()
    prefix = f"bench_{secrets.token_hex(4)}"
    url = f"google://{args.project}?emulator_host={args.emulator}&prefix={prefix}"
    run(url, args.rate, args.seconds, args.connections, args.store)


if __name__ == "__main__":
    main()
