"""The dashboard's routes: the login and logout, the pages and the forms, the static files.

A login takes an admin token (the admin API's constant-time check) and sets the session
cookie (:mod:`core.admin.dashboard.session`); with no token configured (a loopback
listener) it logs in as ``local`` with write access, as the admin API answers then.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from core.admin.dashboard import forms, pages
from core.admin.dashboard.session import (
    COOKIE,
    LOGIN_COOKIE,
    Signer,
    csrf_ok,
    login_ok,
    login_token,
    new_session,
    set_cookie,
    set_login_cookie,
)
from core.admin.dashboard.web import HEADERS, ROOT, TEMPLATES, Handler, guarded, read_form
from core.admin.tokens import AdminToken, find_token

_A = "/destinations/{destination}/actions/{action}"
PAGES: tuple[tuple[str, Handler], ...] = (
    ("", pages.overview),
    ("/", pages.overview),
    ("/destinations/{destination}", pages.destination),
    (_A, pages.action),
    ("/events", pages.events),
    ("/events/{event}", pages.event),
    ("/jobs", pages.jobs),
    ("/jobs/{job}", pages.job),
    ("/search", pages.search),
    ("/sources", pages.sources),
    ("/nodes", pages.nodes),
    ("/migrations", pages.migrations),
    ("/options", pages.options),
)
FORMS: tuple[tuple[str, Handler], ...] = (
    (f"{_A}/retry", forms.retry_action),
    (f"{_A}/pause", forms.pause),
    (f"{_A}/resume", forms.resume),
    (f"{_A}/replay", forms.replay),
    ("/destinations/{destination}/pause", forms.pause),
    ("/destinations/{destination}/resume", forms.resume),
    ("/jobs/{job}/retry", forms.retry_job),
    ("/flows/{flow}/disable", forms.disable_flow),
    ("/flows/{flow}/enable", forms.enable_flow),
)


def _next(value: str | None) -> str:
    """Where to go after the login: a dashboard path, else the overview."""
    if value and value.startswith(f"{ROOT}/") and not value.startswith(f"{ROOT}//") and "\\" not in value:
        return value
    return f"{ROOT}/"


def _login_page(request: Request, signer: Signer, target: str, tokens: list[AdminToken], error: str | None = None,
                status: int = 200) -> Response:
    """The login form, its CSRF token bound to the browser by the pre-session cookie."""
    token = login_token(request, signer)
    html = TEMPLATES.get_template("login.html").render(
        root=ROOT, next=target, error=error, needs_token=bool(tokens), session=None, notice=None, path="",
        login_csrf=token,
    )
    response = HTMLResponse(html, status, headers=HEADERS)
    set_login_cookie(response, request, signer, token)
    return response


def _login(tokens: list[AdminToken], signer: Signer, anonymous: str) -> tuple[Route, Route]:
    async def show(request: Request) -> Response:
        return _login_page(request, signer, _next(request.query_params.get("next")), tokens)

    async def log_in(request: Request) -> Response:
        form = await read_form(request) or {}
        target = _next(form.get("next"))
        if not login_ok(request, signer, form.get("csrf")):
            return _login_page(request, signer, target, tokens,
                               "the login form's CSRF token is missing or stale: log in again", 403)
        if tokens:
            token = find_token(tokens, form.get("token", "").strip())
            if token is None:
                return _login_page(request, signer, target, tokens, "that token is not one of admin.tokens", 401)
            session = new_session(token.name, token.may_write)
        else:
            session = new_session(anonymous, True)
        response = RedirectResponse(target, 303, headers=HEADERS)
        set_cookie(response, request, signer.dump(session))
        set_cookie(response, request, "", max_age=0, name=LOGIN_COOKIE)
        return response

    return Route(f"{ROOT}/login", show, methods=["GET"]), Route(f"{ROOT}/login", log_in, methods=["POST"])


def _log_out(signer: Signer) -> Route:
    async def log_out(request: Request) -> Response:
        """End the session; a post without its CSRF token is refused (another site cannot log one out)."""
        session = signer.load(request.cookies.get(COOKIE, ""))
        form = await read_form(request) or {}
        if session is not None and not csrf_ok(session, form.get("csrf")):
            return HTMLResponse("the log-out form's CSRF token is missing or stale: reload the page", 403,
                                headers=HEADERS)
        response = RedirectResponse(f"{ROOT}/login", 303, headers=HEADERS)
        set_cookie(response, request, "", max_age=0)
        return response

    return Route(f"{ROOT}/logout", log_out, methods=["POST"])


def routes(runtime: Any, tokens: list[AdminToken], anonymous: str, signer: Signer | None = None) -> list[BaseRoute]:
    """The dashboard's routes for ``runtime``, behind ``tokens`` (none: everyone is ``anonymous``,
    with write access, as in the admin API)."""
    signer = signer or Signer()
    found: list[BaseRoute] = [*_login(tokens, signer, anonymous), _log_out(signer)]
    found += [Route(ROOT + path, guarded(h, runtime, signer, False), methods=["GET"]) for path, h in PAGES]
    found += [Route(ROOT + path, guarded(h, runtime, signer, True), methods=["POST"]) for path, h in FORMS]
    found.append(Mount(f"{ROOT}/static", StaticFiles(packages=[("core.admin.dashboard", "static")]), name="static"))
    return found
