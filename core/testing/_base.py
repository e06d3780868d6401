"""What every adapter suite shares: building adapters from the one overridden fixture,
opening and closing them, and the capability gate.

A suite subclass overrides ``adapter_url`` (the adapter is then built through the installed
plugin's registration, found by the URL's scheme, which tests the registration too) or
``make_adapter`` (a callable returning a new, unopened adapter). Tests that check an optional
feature are decorated with :func:`requires`; they are skipped, with the reason shown, only when
the adapter does not declare that capability.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, TypeVar

import pytest
import pytest_asyncio

from hookspecs import AdapterRegistration, Capability

F = TypeVar("F", bound=Callable[..., Any])
_REQUIRES = "_core_requires"
_HOSTS: dict[tuple[str, str], Any] = {}


def requires(*capabilities: Capability | str) -> Callable[[F], F]:
    """Mark a suite test as checking optional ``capabilities`` (:class:`~hookspecs.Capability`)."""

    def mark(test: F) -> F:
        setattr(test, _REQUIRES, tuple(capabilities))
        return test

    return mark


def _host() -> Any:
    """A plugin host for the current plugin environment variables (cached per value)."""
    from core.config import load_settings
    from core.plugins import PluginHost

    env = (os.environ.get("CORE_LOAD_PLUGINS", "\0"), os.environ.get("CORE_DISABLE_PLUGINS", ""))
    if env not in _HOSTS:
        _HOSTS[env] = PluginHost(load_settings())
    return _HOSTS[env]


def registration(kind: str, url: str) -> AdapterRegistration[Any]:
    """The installed registration serving ``url`` for ``kind`` (``PluginError`` if none)."""
    offer = _host().registry.resolve(kind, url)
    registered: AdapterRegistration[Any] = offer.registration
    return registered


def create_adapter(kind: str, url: str, options: dict[str, Any] | None = None) -> Any:
    """Build an adapter of ``kind`` for ``url`` through the installed plugins, unopened."""
    return _host().registry.create(kind, url, dict(options or {}))


class AdapterPool:
    """Opens adapters on demand for one test and closes every one of them afterwards."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._opened: list[Any] = []

    async def open(self) -> Any:
        """A new adapter, opened (another client of the same service as the others)."""
        adapter = self._make()
        if inspect.isawaitable(adapter):
            adapter = await adapter
        await adapter.open()
        self._opened.append(adapter)
        return adapter

    async def close_all(self) -> None:
        while self._opened:
            await self._opened.pop().close()


class CapabilitySuite:
    """Base of every suite: the capability gate.

    :cvar capabilities: what the object under test claims to support; tests decorated with
        :func:`requires` run when their capabilities are in it and are skipped (with the
        reason shown) otherwise.
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str] | set[str] | None] = None

    @pytest.fixture
    def service_url(self, request: pytest.FixtureRequest) -> str:
        """``adapter_url``, found outside the event loop (it may come from async fixtures), for
        tests that build adapters with options of their own or in another process."""
        return _adapter_url(request, self.kind)

    @pytest.fixture
    def declared_capabilities(self) -> frozenset[str]:
        """What the object under test claims to support."""
        return frozenset(self.capabilities or ())

    @pytest.fixture(autouse=True)
    def _capability_gate(self, request: pytest.FixtureRequest) -> None:
        needed = getattr(getattr(request, "function", None), _REQUIRES, ())
        if not needed:
            return
        declared = request.getfixturevalue("declared_capabilities")
        missing = [c for c in needed if c not in declared]
        if missing:
            pytest.skip(f"the {self.kind} does not declare the capability {', '.join(missing)}")


class AdapterSuite(CapabilitySuite):
    """Base of the adapter suites; ``kind`` is the adapter kind under test.

    ``capabilities = None`` (the default) takes those the adapter's registration declares,
    found from ``adapter_url``. Its tests are marked ``asyncio``, so they also run where
    pytest-asyncio is in strict mode.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    @pytest.fixture
    def adapter_options(self) -> dict[str, Any]:
        """Options passed to the registration's factory with ``adapter_url``."""
        return {}

    @pytest.fixture
    def make_adapter(self, request: pytest.FixtureRequest, adapter_options: dict[str, Any]) -> Callable[[], Any]:
        """A callable returning a new, unopened adapter; override it or ``adapter_url``."""
        url = _adapter_url(request, self.kind)
        return lambda: create_adapter(self.kind, url, adapter_options)

    @pytest.fixture
    def declared_capabilities(self, request: pytest.FixtureRequest) -> frozenset[str]:
        """What the adapter claims to support: the class attribute, else its registration."""
        if self.capabilities is not None:
            return frozenset(self.capabilities)
        return registration(self.kind, _adapter_url(request, self.kind)).capabilities

    @pytest_asyncio.fixture
    async def adapters(self, make_adapter: Callable[[], Any]) -> AsyncIterator[AdapterPool]:
        """Open more adapters of the same service (concurrent clients); closed after the test."""
        pool = AdapterPool(make_adapter)
        try:
            yield pool
        finally:
            await pool.close_all()

    @pytest_asyncio.fixture
    async def adapter(self, adapters: AdapterPool) -> Any:
        """The adapter under test, opened."""
        return await adapters.open()


def _adapter_url(request: pytest.FixtureRequest, kind: str) -> str:
    try:
        url = request.getfixturevalue("adapter_url")
    except pytest.FixtureLookupError:
        pytest.fail(
            f"the {kind} suite needs a fixture 'adapter_url' (the URL of the adapter under test) "
            f"or an override of 'make_adapter' together with a 'capabilities' class attribute",
            pytrace=False,
        )
    if not isinstance(url, str):
        pytest.fail(f"fixture 'adapter_url' returned {url!r}, not a URL string", pytrace=False)
    return url
