"""The tutorial's shop: orders arrive on a webhook, are cleaned by a transform, are loaded into
a PostgreSQL warehouse every few seconds, and are sent at once, signed, to a partner's webhook."""

from __future__ import annotations

from dataclasses import replace

from core_plugin_http import WebhookDestination
from core_plugin_sql import Column, SQLDestination, TableAction

from hookspecs import Destination, Event, Flow, HttpTrigger, Schedule, Secret, Source, hookimpl


@hookimpl
def core_register_sources() -> list[Source]:
    # POST /webhooks/orders with {"data": {...}} stores one event and answers 202.
    return [Source("shop", triggers=[HttpTrigger("orders", "/webhooks/orders")])]


def clean(event: Event) -> Event | None:
    """The transform: drop test pings, keep the three fields we load, normalised."""
    data = event.data
    if not isinstance(data, dict) or data.get("test"):
        return None  # no jobs for this event
    order = {"id": str(data["id"]), "total": float(data["total"]),
             "customer": str(data.get("customer", "")).strip().lower()}
    return replace(event, data=order)


@hookimpl
def core_register_destinations() -> list[Destination]:
    orders = [Column("id"), Column("total", "numeric"), Column("customer")]
    return [
        # Batches every 2 seconds; upserts by id, so a redelivered job writes the same row.
        SQLDestination("warehouse", [TableAction("orders", "orders", orders, key=["id"])],
                       schedule=Schedule(interval="@every 2s", max_retries=3)),
        # One signed POST per job as soon as it is stored (realtime, through NATS).
        WebhookDestination("partner", secrets=Secret(env="PARTNER_WHSEC"),
                           schedule=Schedule(realtime=True, max_retries=3)),
    ]


@hookimpl
def core_register_flows() -> list[Flow]:
    return [Flow("orders", source="shop", trigger="orders", transform=clean,
                 actions=["warehouse.orders", "partner.post"])]
