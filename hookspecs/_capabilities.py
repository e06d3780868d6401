"""The optional features an adapter, a source or a destination declares.

The conformance kit (``core.testing``) runs every check of a capability that is declared and
skips, saying so, only the checks of those that are not. A :class:`Capability` is a ``str``:
``Capability.PURGE == "purge"``, so a plain string is accepted wherever a capability is.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """One optional feature, by the suite that checks it."""

    #: pubsub: the adapter can be closed and opened again and finds its consumer groups, with
    #: what they had not acknowledged.
    RECONNECT = "reconnect"
    #: store: ``purge(before=..., where=...)`` deletes old events whose jobs are all final (and,
    #: given a job filter, all match it).
    PURGE = "purge"
    #: store: ``pause`` / ``resume`` / ``pauses`` keep paused actions, which the scheduler honours.
    PAUSE = "pause"
    #: store: ``disable_flow`` / ``enable_flow`` / ``disabled_flows`` keep the disabled flows,
    #: which the gateways honour.
    FLOWS = "flows"
    #: store: ``take_tokens(key, wanted, rate=, burst=, now=)`` keeps token buckets shared by every
    #: scheduler of the store, which enforce the actions' ``rate_limit``.
    RATE_LIMITS = "rate_limits"
    #: store: claims honour :attr:`Job.ordering_key`: of the jobs of one action with the same
    #: key, only the oldest unfinished one can be claimed.
    ORDERING = "ordering"
    #: store: ``claim`` / ``claim_ids`` take ``concurrency=N``: they claim at most ``N`` minus the
    #: action's jobs already ``executing``, across every scheduler of the store, which enforces
    #: the actions' ``concurrency``.
    CONCURRENCY = "concurrency"
    #: supervisor: ``leases()`` lists the live leases (key, owner, token, until), so
    #: ``core nodes list`` and the admin API say who holds each lease and until when.
    LEASES = "leases"
    #: source, destination: ``init`` / ``shutdown`` can run in the test environment.
    LIFECYCLE = "lifecycle"
    #: destination: ``load`` can run against the destination from the tests.
    LOAD = "load"
