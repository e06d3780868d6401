"""Keyset paging of the store's lists: how many rows a command or route reads per query when it
walks every match (``core jobs list``, the admin API's filtered pages, bulk redrive and purge),
so memory stays bounded by one page whatever the number of matches."""

from __future__ import annotations

#: Rows fetched per query while a list is read to its end.
SCAN_PAGE = 1000
