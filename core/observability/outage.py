"""One repeating failure, logged as an episode: a warning when it starts, a summary at most
every :data:`SUMMARY_SECONDS` while it lasts, and one line when it ends.

A broker that is down fails every publish of every request; a line per failure floods the log
(2,000 lines a minute at the battery's load) and buries what else happened. The metrics still
count every failure.
"""

from __future__ import annotations

import logging
import time

#: Seconds between two "still failing" lines of one episode.
SUMMARY_SECONDS = 60.0


class Outage:
    """The failures of one operation (``what``), for :meth:`failed` / :meth:`recovered`."""

    def __init__(self, log: logging.Logger, what: str, *, summary_seconds: float = SUMMARY_SECONDS) -> None:
        self.log = log
        self.what = what
        self.summary_seconds = summary_seconds
        self.failures = 0
        self._started = 0.0
        self._logged = 0.0

    def failed(self, detail: str) -> None:
        """Count a failure; log it if it starts an episode or a summary is due."""
        now = time.monotonic()
        self.failures += 1
        if self.failures == 1:
            self._started = self._logged = now
            self.log.warning("%s: %s (further failures are summed up every %gs until it works again)",
                             self.what, detail, self.summary_seconds)
        elif now - self._logged >= self.summary_seconds:
            self._logged = now
            self.log.warning("%s: still failing, %d time(s) in %.0fs; last: %s",
                             self.what, self.failures, now - self._started, detail)

    def recovered(self) -> None:
        """End the episode, if one is running, with one line saying how long and how often."""
        if self.failures:
            self.log.info("%s: works again after %d failure(s) in %.0fs",
                          self.what, self.failures, time.monotonic() - self._started)
            self.failures = 0
