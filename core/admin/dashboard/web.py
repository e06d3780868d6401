"""The dashboard's plumbing: templates, the session guard of every page, forms and their CSRF
check, and the :class:`~core.admin.endpoints.Call` through which a page calls the admin API's
own read and write functions (no query of its own but the store's dashboard reads).

A page without a session redirects to the login; a form post without the session's CSRF
token, or from a read-only token, is refused (``403``). Every answer carries a strict
Content-Security-Policy (scripts and styles from this package only) and ``no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core.admin.dashboard.session import COOKIE, Session, Signer, csrf_ok
from core.admin.endpoints import Call
from core.admin.errors import ApiError

log = logging.getLogger("core.admin")
ROOT = "/admin"
FLASH = "core_admin_flash"
MAX_FORM = 64 * 1024
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(moment: datetime | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(moment: datetime | None) -> str:
    """How long ago ``moment`` was, roughly (``3m ago``)."""
    if moment is None:
        return ""
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _pretty(value: Any) -> str:
    """JSON pretty-printed (shown as text: the templates escape it)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z).decode()


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("core.admin.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters |= {"when": _when, "ago": _ago, "pretty": _pretty, "q": lambda v: quote(str(v), safe="")}


@dataclass(slots=True)
class Page:
    """One request to a dashboard page: the runtime, the session, the form of a post."""

    request: Request
    runtime: Any
    session: Session
    signer: Signer
    form: dict[str, str] = field(default_factory=dict)

    def call(self, path: Mapping[str, str] | None = None, query: Mapping[str, Any] | QueryParams | None = None,
             body: Any = None) -> Call:
        """The admin API :class:`Call` of this request, as the session's token."""
        params = query if isinstance(query, QueryParams) else QueryParams(dict(query or {}))
        return Call(runtime=self.runtime, who=self.session.who, query=params, path=dict(path or {}), body=body)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        """``template`` rendered with ``values``, the session and the pending notice."""
        notice = self.signer.unsign(self.request.cookies.get(FLASH, "")) if FLASH in self.request.cookies else None
        html = TEMPLATES.get_template(template).render(
            session=self.session, root=ROOT, notice=notice if isinstance(notice, dict) else None,
            path=self.request.url.path, **values,
        )
        response = HTMLResponse(html, status, headers=HEADERS)
        if notice is not None:
            response.delete_cookie(FLASH, path="/admin/")
        return response

    def done(self, to: str, message: str, ok: bool = True) -> Response:
        """Redirect (303) to ``to`` (a dashboard path, else the overview) with ``message`` shown there once."""
        to = to if to.startswith(f"{ROOT}/") and not to.startswith(f"{ROOT}//") else f"{ROOT}/"
        response = RedirectResponse(to, 303, headers=HEADERS)
        response.set_cookie(FLASH, self.signer.sign({"text": message, "ok": ok}), max_age=60, path="/admin/",
                            httponly=True, samesite="strict", secure=self.request.url.scheme == "https")
        return response


Handler = Callable[[Page], Awaitable[Response]]


def _error_page(page: Page, status: int, message: str, hint: str | None = None) -> Response:
    return page.render("error.html", status, status_code=status, message=message, hint=hint)


async def read_form(request: Request) -> dict[str, str] | None:
    """The fields of a urlencoded form; ``None`` when it is larger than :data:`MAX_FORM`."""
    raw = await request.body()
    if len(raw) > MAX_FORM:
        return None
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def guarded(handler: Handler, runtime: Any, signer: Signer, writes: bool) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind the session: login redirect, CSRF and write access for a post, and
    admin API refusals shown as a page with their status."""

    async def serve(request: Request) -> Response:
        session = signer.load(request.cookies.get(COOKIE, ""))
        if session is None:
            if writes:
                return HTMLResponse("no session: log in first", 403, headers=HEADERS)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{ROOT}/login?next={quote(target, safe='')}", 303, headers=HEADERS)
        page = Page(request, runtime, session, signer)
        if writes:
            form = await read_form(request)
            if form is None:
                return _error_page(page, 413, f"the form is larger than {MAX_FORM} bytes")
            if not csrf_ok(session, form.get("csrf")):
                return _error_page(page, 403, "the form's CSRF token is missing or stale",
                                   "reload the page and submit it again")
            if not session.may_write:
                return _error_page(page, 403, f"token {session.who!r} is read-only and this form writes",
                                   "log in with a token with write access (NAME:write:SECRET in admin.tokens)")
            page.form = form
        try:
            return await handler(page)
        except ApiError as exc:
            if writes and exc.status in (404, 409):  # nothing to do: said on the page the form came from
                return page.done(page.form.get("back") or request.url.path, exc.message, ok=False)
            return _error_page(page, exc.status, exc.message, exc.hint)
        except Exception:
            log.exception("dashboard page %s %s failed", request.method, request.url.path)
            return _error_page(page, 500, "this page failed; see the service's log")

    serve.__name__ = handler.__name__
    return serve
