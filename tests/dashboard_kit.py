"""A project for the dashboard's tests: a destination whose action fails (its jobs are
discarded at once) until a ``fixed`` file exists, and one that succeeds; a secret option."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

APP = """
import re
from pathlib import Path

import httpx
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

HERE = Path(__file__).parent

class Insert(Action):
    name = "insert"
    schedule = Schedule(interval="@every 1s", max_retries=0)

    async def load(self, toolkit, queue):
        if not (HERE / "fixed").exists():
            raise RuntimeError("the warehouse refused the row: disk full")

class Notify(Action):
    name = "notify"
    schedule = Schedule(interval="@every 1s")

    async def load(self, toolkit, queue):
        pass

@hookimpl
def core_register_sources():
    return [Source("web", [HttpTrigger("track", "/track")])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Insert()]), Destination("crm", [Notify()])]

@hookimpl
def core_register_flows():
    return [Flow("web-to-warehouse", "web", ["warehouse.insert"]), Flow("web-to-crm", "web", ["crm.notify"])]
"""
#: A secret of the configuration that no page may show.
SECRET = "sup3r-s3cret-api-t0ken"


def make_project(directory: Path, store: str = "sqlite:///core.db") -> Path:
    """A project in ``directory`` running :data:`APP` on ``store``, with :data:`SECRET` in its options."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(APP)
    (directory / "core.toml").write_text(
        f'app = "app.py"\nstore = "{store}"\npubsub = ""\nsupervisor = "store"\nwanderer = "{store}"\n'
        f'[options.warehouse]\napi_token = "{SECRET}"\n'
    )
    return directory


def form_token(html: str) -> str:
    """The CSRF token of the first form of a dashboard page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def http_log_in(client: httpx.Client, base: str, secret: str = "") -> httpx.Response:
    """Log ``client`` in to the dashboard at ``base`` as a browser does: the login form, then
    its post with the form's CSRF token (``secret``: the admin token, none when open)."""
    form = client.get(f"{base}/login")
    return client.post(f"{base}/login", data={"token": secret, "csrf": form_token(form.text)})
