"""The dashboard's forms that write. Each calls the admin API's own write function
(:mod:`core.admin.write`, :mod:`core.admin.flows`) with the form's fields as its JSON body,
then redirects back to the page it came from with what was done (or why nothing was)."""

from __future__ import annotations

from starlette.responses import Response

from core.admin import flows, write
from core.admin.dashboard.web import ROOT, Page
from core.admin.errors import ApiError
from core.admin.redrive import RETRYABLE


def _why(page: Page) -> dict[str, str]:
    reason = page.form.get("reason", "").strip()
    return {"reason": reason} if reason else {}


def _action_page(page: Page) -> str:
    path = page.request.path_params
    return f"{ROOT}/destinations/{path['destination']}/actions/{path['action']}"


def _paused_page(page: Page) -> str:
    """The page of what a pause form (un)pauses: the action's, else the destination's."""
    path = page.request.path_params
    return _action_page(page) if "action" in path else f"{ROOT}/destinations/{path['destination']}"


async def retry_action(page: Page) -> Response:
    """Retry the action's failed or discarded jobs (form field ``status``)."""
    path, status = page.request.path_params, page.form.get("status", "")
    if status not in {s.value for s in RETRYABLE}:
        raise ApiError(400, f"status {status!r} is not retried", allowed=[s.value for s in RETRYABLE])
    ref = f"{path['destination']}.{path['action']}"
    where = {"destinations_in": path["destination"], "actions_in": ref, "status_in": status}
    done = await write.retry_jobs(page.call(body={"where": where, **_why(page)}))
    return page.done(_action_page(page), f"retried {done['retried']} of {done['matched']} {status} jobs of {ref}")


async def retry_job(page: Page) -> Response:
    """Retry one job."""
    job_id = page.request.path_params["job"]
    done = await write.retry_jobs(page.call(body={"ids": [job_id], **_why(page)}))
    refused = f" ({'; '.join(done['refused'])})" if done["refused"] else ""
    return page.done(f"{ROOT}/jobs/{job_id}", f"retried {done['retried']} job{refused}", ok=not refused)


async def pause(page: Page) -> Response:
    """Pause the action, or the whole destination (no action in the path)."""
    done = await write.pause(page.call(page.request.path_params, body=_why(page)))
    return page.done(page.form.get("back") or _paused_page(page), f"paused {done['paused']}")


async def resume(page: Page) -> Response:
    """Resume the paused action, or the paused destination."""
    done = await write.resume(page.call(page.request.path_params, body=_why(page)))
    return page.done(page.form.get("back") or _paused_page(page), f"resumed {done['resumed']}")


async def replay(page: Page) -> Response:
    """Replay stored events into the action: those of the ids given, else those received
    within the duration given (``received_after``, e.g. ``2h``)."""
    path = page.request.path_params
    ids = [i for i in page.form.get("ids", "").replace(",", " ").split() if i]
    since = page.form.get("received_after", "").strip()
    if not ids and not since:
        raise ApiError(400, "give event ids or a time to replay the events received since (e.g. 2h)")
    chosen: dict[str, object] = {"ids": ids} if ids else {"where": {"received_after": since}}
    body = {"to": f"{path['destination']}.{path['action']}", **chosen, **_why(page)}
    done = await write.replay_events(page.call(body=body))
    errors = f", {done['error_count']} marshal errors" if done["error_count"] else ""
    return page.done(_action_page(page), f"replayed {done['matched']} events: {done['created']} new jobs{errors}")


async def disable_flow(page: Page) -> Response:
    """Disable a flow."""
    done = await flows.disable_flow(page.call(page.request.path_params, body=_why(page)))
    return page.done(f"{ROOT}/sources", f"disabled flow {done['disabled']}")


async def enable_flow(page: Page) -> Response:
    """Enable a disabled flow."""
    done = await flows.enable_flow(page.call(page.request.path_params, body=_why(page)))
    return page.done(f"{ROOT}/sources", f"enabled flow {done['enabled']}")
