"""The admin API's flow routes: list the flows with their enabled state, disable and enable one.

A disabled flow is kept in the store (``disabled_flows``, store schema 4) with who disabled it,
why and when, so every gateway honours it: within ``gateway.flow_refresh_seconds`` the events
they store get no job of that flow (the event is still stored, with its other flows' jobs).
Enabling it applies to the events stored after; nothing is made for those stored meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.admin.endpoints import Call, Endpoint, path_param
from core.admin.errors import ApiError, not_found
from core.admin.write import WHY, reason_of
from hookspecs import DisabledFlow, Flow, FlowSwitchStore


def flow_of(call: Call) -> Flow:
    """The flow named in the path, or a 404 listing the flows."""
    name = call.path["flow"]
    for flow in call.runtime.pipeline.flows:
        if flow.name == name:
            return flow  # type: ignore[no-any-return]
    known = sorted(f.name for f in call.runtime.pipeline.flows)
    raise not_found("flow", name, known, hint="the pipeline's flows: " + (", ".join(known) or "none"))


async def disabled_of(call: Call) -> dict[str, DisabledFlow]:
    """The store's disabled flows by name (none when it cannot disable flows)."""
    store = call.runtime.store
    return {d.flow: d for d in await store.disabled_flows()} if isinstance(store, FlowSwitchStore) else {}


def _flow(flow: Flow, disabled: DisabledFlow | None) -> dict[str, Any]:
    return {
        "name": flow.name,
        "source": flow.source,
        "trigger": flow.trigger,
        "events": list(flow.events),
        "actions": list(flow.actions),
        "destinations": sorted({ref.partition(".")[0] for ref in flow.actions}),
        "enabled": disabled is None,
        "disabled_by": None if disabled is None else disabled.who,
        "reason": None if disabled is None else disabled.reason,
        "disabled_at": None if disabled is None else disabled.created_at,
    }


async def list_flows(call: Call) -> Any:
    """Every flow of the pipeline: source, trigger, actions, enabled or who disabled it, why, when."""
    disabled = await disabled_of(call)
    return {"flows": [_flow(f, disabled.get(f.name)) for f in call.runtime.pipeline.flows]}


async def disable_flow(call: Call) -> Any:
    """Disable a flow: the gateways make none of its jobs for the events they store from then on."""
    flow, store = flow_of(call), call.runtime.store
    if not isinstance(store, FlowSwitchStore):
        raise ApiError(409, f"the store {type(store).__name__} cannot disable flows")
    reason = reason_of(call)
    if not await store.disable_flow(
        DisabledFlow(flow=flow.name, who=call.who, created_at=datetime.now(UTC), reason=reason)
    ):
        raise ApiError(409, f"flow {flow.name!r} is disabled already", hint="enable it first")
    return {"disabled": flow.name, "by": call.who, "reason": reason}


async def enable_flow(call: Call) -> Any:
    """Enable a disabled flow: the events stored from then on get its jobs again."""
    flow, store = flow_of(call), call.runtime.store
    if not isinstance(store, FlowSwitchStore) or not await store.enable_flow(flow.name):
        raise ApiError(409, f"flow {flow.name!r} is not disabled")
    return {"enabled": flow.name, "by": call.who}


_F = (path_param("flow", "flow name"),)
ENDPOINTS = (
    Endpoint(
        "GET",
        "/flows",
        list_flows,
        "Every flow: source, trigger, actions, enabled or who disabled it, why and when",
        response={"type": "object", "required": ["flows"], "properties": {"flows": {"type": "array"}}},
    ),
    Endpoint("POST", "/flows/{flow}/disable", disable_flow, "Disable a flow", _F, write=True, body=WHY),
    Endpoint("POST", "/flows/{flow}/enable", enable_flow, "Enable a disabled flow", _F, write=True, body=WHY),
)
