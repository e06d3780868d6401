"""``core generate plugin``: write a plugin distribution that installs, registers itself and
runs the conformance kit, with a stub that fails the kit until it is implemented.

The adapter stubs are generated from the contract's protocols (signatures and docstrings of
:class:`~hookspecs.Store` and the others), so they never drift from ``hookspecs``.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from string import Template

import hookspecs
from core import __version__
from core.errors import CoreError

ADAPTER_KINDS = {"store": "Store", "pubsub": "PubSub", "supervisor": "Supervisor", "wanderer": "Wanderer"}
KINDS = (*ADAPTER_KINDS, "source", "destination")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_IMPORTS = {"Sequence": "collections.abc", "AsyncIterator": "collections.abc", "datetime": "datetime"}


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """What to generate: the plugin's short ``name`` and the ``kind`` of thing it provides."""

    name: str
    kind: str

    @property
    def distribution(self) -> str:
        return f"core-plugin-{self.name}"

    @property
    def package(self) -> str:
        return f"core_plugin_{self.name.replace('-', '_')}"

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def protocol(self) -> str:
        return ADAPTER_KINDS.get(self.kind, self.kind.capitalize())

    @property
    def cls(self) -> str:
        return f"{self.camel}{self.protocol}"

    def values(self) -> dict[str, str]:
        major, minor = (int(p) for p in __version__.split(".")[:2])
        upper = f"{major + 1}.0" if major else f"0.{minor + 1}"
        return {
            "name": self.name, "kind": self.kind, "distribution": self.distribution, "package": self.package,
            "camel": self.camel, "protocol": self.protocol, "cls": self.cls, "snake": self.name.replace("-", "_"),
            "core_requirement": f"core>={major}.{minor},<{upper}",
        }


def check_spec(name: str, kind: str) -> PluginSpec:
    """Validate the plugin name and kind, or raise a :class:`CoreError` saying what is allowed."""
    if name.startswith("core-plugin-"):
        name = name.removeprefix("core-plugin-")
    if not _NAME.match(name) or keyword.iskeyword(name.replace("-", "_")):
        raise CoreError(
            f"plugin name {name!r} is not valid",
            hint="use lower-case letters and digits, words joined by '-', starting with a letter (e.g. 'my-db')",
        )
    if kind not in KINDS:
        raise CoreError(f"plugin kind {kind!r} is not valid", hint=f"choose one of: {', '.join(KINDS)}")
    return PluginSpec(name, kind)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stub_method(spec: PluginSpec, name: str, func: object) -> tuple[str, set[str]]:
    """The source of one stub method, and the names its annotations use."""
    signature = inspect.signature(func)  # type: ignore[arg-type]
    params, star = [], False
    for param in signature.parameters.values():
        if param.kind is param.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        text = param.name if param.annotation is param.empty else f"{param.name}: {param.annotation}"
        params.append(text if param.default is param.empty else f"{text} = {param.default!r}")
    returns = signature.return_annotation
    paragraph = " ".join((inspect.getdoc(func) or name).split("\n\n")[0].split())
    head = paragraph.split(". ")[0].rstrip(".") + "."
    used = set(re.findall(r"[A-Za-z_]\w*", " ".join(params) + " " + str(returns)))
    if name in ("open", "close"):
        body = f'        """{head}"""\n'
    else:
        message = f"{spec.distribution}: implement {spec.cls}.{name}(): {head.rstrip('.')}"
        chunks = "\n".join(f"            {_quote(part)}" for part in textwrap.wrap(message, 80, drop_whitespace=False))
        body = f'        """{head}"""\n        raise NotImplementedError(\n{chunks}\n        )\n'
    return f"    async def {name}({', '.join(params)}) -> {returns}:\n{body}", used


def adapter_module(spec: PluginSpec) -> str:
    """The stub adapter class: every method of the kind's protocol, raising until written."""
    protocol = getattr(hookspecs, spec.protocol)
    methods, used = [], set()
    for name, func in inspect.getmembers(protocol, inspect.isfunction):
        if name.startswith("_"):
            continue
        source, names = _stub_method(spec, name, func)
        methods.append(source)
        used |= names
    stdlib = {f"from {_IMPORTS[n]} import {n}" for n in used if n in _IMPORTS} | {"from typing import Any"}
    contract = sorted(n for n in used if n not in _IMPORTS and hasattr(hookspecs, n) and n[0].isupper())
    lines = sorted(stdlib) + ([f"\nfrom hookspecs import {', '.join(contract)}"] if contract else [])
    ordered = sorted(methods, key=lambda m: (not m.startswith("    async def open"), not m.startswith(
        "    async def close"), m))
    return Template(ADAPTER).substitute(spec.values(), imports="\n".join(lines), methods="\n".join(ordered))


ADAPTER = '''"""The ${name} ${kind} adapter: the stub written by ``core generate plugin``.

Implement each method as its docstring says (the contract is ``hookspecs.${protocol}``), until
``pytest`` passes: the tests run the conformance kit (``core.testing``) against this class.
"""

from __future__ import annotations

${imports}


class ${cls}:
    """A ${protocol} for ``${name}://`` URLs."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options

${methods}'''

PLUGIN_ADAPTER = '''"""The hookimpls of ${distribution}: light, so ``core plugins list`` imports no SDK."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, ${protocol}, hookimpl


def _factory(url: str, options: dict[str, Any]) -> ${protocol}:
    # imported only when configuration selects the adapter: listing plugins stays fast
    from ${package}.adapter import ${cls}

    return ${cls}(url, **options)


@hookimpl
def core_register_${kind}s() -> list[AdapterRegistration[${protocol}]]:
    return [AdapterRegistration(
        name="${snake}", schemes=("${name}",), factory=_factory,
        capabilities=frozenset(),  # declare optional features the conformance kit then checks
        description="${name} ${kind} adapter",
    )]
'''

PLUGIN_PIPELINE = '''"""The hookimpls of ${distribution}: light, the ${kind} is built when the hook is called."""

from __future__ import annotations

from hookspecs import ${protocol}, hookimpl


@hookimpl
def core_register_${kind}s() -> list[${protocol}]:
    from ${package}.${kind} import make_${kind}

    return [make_${kind}()]
'''

SOURCE = '''"""The ${name} source: the stub written by ``core generate plugin``."""

from __future__ import annotations

from collections.abc import Sequence

from hookspecs import EventDraft, HttpRequest, HttpTrigger, Source


def extract(request: HttpRequest) -> Sequence[EventDraft]:
    """Turn a webhook request into events (raise ``hookspecs.Rejected`` for bad input)."""
    raise NotImplementedError(
        "${distribution}: implement extract(): turn an HTTP request into EventDraft objects"
    )


def make_source() -> Source:
    """The source and its triggers (add cron, cdc or subscription triggers as needed)."""
    return Source("${snake}", triggers=[HttpTrigger("events", "/webhooks/${name}", extract=extract)])
'''

DESTINATION = '''"""The ${name} destination: the stub written by ``core generate plugin``."""

from __future__ import annotations

from hookspecs import Action, Destination, Event, LoadResult, Payload, Queue, Schedule, Toolkit


class Send(Action):
    """Send each event to ${name}."""

    name = "send"
    schedule = Schedule(realtime=True)

    def marshal(self, event: Event, toolkit: Toolkit) -> Payload | None:
        raise NotImplementedError(
            "${distribution}: implement Send.marshal(): turn an event into a job Payload"
        )

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        raise NotImplementedError(
            "${distribution}: implement Send.load(): deliver the queue's jobs, report with Then"
        )


def make_destination() -> Destination:
    """The destination and its actions."""
    return Destination("${snake}", actions=[Send()])
'''

TEST_ADAPTER = '''"""The conformance kit against ${distribution}: it fails until the adapter is written."""

from __future__ import annotations

import pytest
from core.testing import ${protocol}Suite


class Test${cls}(${protocol}Suite):
    @pytest.fixture
    def adapter_url(self) -> str:
        """The URL of the service under test; give each test its own database or prefix."""
        return "${name}://127.0.0.1/conformance"
'''

TEST_SOURCE = '''"""The kit's source checks against ${distribution}: they fail until the source is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from core.testing import SourceSuite
from hookspecs import HttpRequest, Source

from ${package}.source import make_source


class Test${camel}Source(SourceSuite):
    @pytest.fixture
    def source(self) -> Source:
        return make_source()

    @pytest.fixture
    def http_samples(self) -> Mapping[str, Sequence[HttpRequest]]:
        body = b'{"data": {"id": 1}}'
        headers = {"content-type": "application/json"}
        return {"events": [HttpRequest("POST", "/webhooks/${name}", headers, {}, body)]}
'''

TEST_DESTINATION = '''"""The kit's destination checks against ${distribution}: they fail until it is written."""

from __future__ import annotations

import pytest
from core.testing import DestinationSuite
from hookspecs import Destination

from ${package}.destination import make_destination


class Test${camel}Destination(DestinationSuite):
    @pytest.fixture
    def destination(self) -> Destination:
        return make_destination()
'''

PYPROJECT = '''[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "${distribution}"
version = "0.1.0"
description = "${name}: a ${kind} plugin for core."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["${core_requirement}"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.24", "mypy>=1.11"]

[project.entry-points."core.plugins"]
${snake} = "${package}.plugin"

[tool.core-plugin]
# Services the tests need, started by the project's .ci/services.py (e.g. ["postgresql"]).
services = []

[tool.hatch.build.targets.wheel]
packages = ["src/${package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
addopts = "-ra --strict-markers"
${ruff}
[tool.mypy]
python_version = "3.11"
strict = true
files = ["src", "tests"]
mypy_path = "src"
'''

README = '''# ${distribution}

A ${kind} plugin for [core](https://pypi.org/project/core/), generated by `core generate plugin`.

- `src/${package}/plugin.py`: the hookimpls (kept light: the implementation is imported lazily).
- `src/${package}/${module}.py`: the implementation to write; every stub says what it must do.
- `tests/`: the conformance kit (`core.testing`), which fails until the implementation is done.

```sh
pip install -e '.[test]'
core plugins list          # ${snake} is listed, with what it provides
pytest                     # the conformance kit
```

See "Testing a plugin" in core's docs for the fixtures and capability flags.
'''


def render(spec: PluginSpec, *, in_repo: bool) -> dict[str, str]:
    """Every file of the plugin, by path relative to its directory."""
    values = spec.values()
    adapter = spec.kind in ADAPTER_KINDS
    module = "adapter" if adapter else spec.kind
    ruff = '\n[tool.ruff]\nextend = "../../pyproject.toml"\n' if in_repo else ""
    src = f"src/{spec.package}"
    files = {
        "pyproject.toml": Template(PYPROJECT).substitute(values, ruff=ruff),
        "README.md": Template(README).substitute(values, module=module),
        f"{src}/__init__.py": f'"""{spec.distribution}: a {spec.kind} plugin for core."""\n',
        f"{src}/py.typed": "",
        f"{src}/plugin.py": Template(PLUGIN_ADAPTER if adapter else PLUGIN_PIPELINE).substitute(values),
        "tests/__init__.py": "",
    }
    if adapter:
        files[f"{src}/adapter.py"] = adapter_module(spec)
        files[f"tests/test_{spec.kind}.py"] = Template(TEST_ADAPTER).substitute(values)
    else:
        body, test = (SOURCE, TEST_SOURCE) if spec.kind == "source" else (DESTINATION, TEST_DESTINATION)
        files[f"{src}/{spec.kind}.py"] = Template(body).substitute(values)
        files[f"tests/test_{spec.kind}.py"] = Template(test).substitute(values)
    return files


def generate(spec: PluginSpec, target: Path, *, in_repo: bool) -> list[Path]:
    """Write the plugin into ``target`` (which must not exist or be empty); return the files."""
    if target.exists() and any(target.iterdir()):
        raise CoreError(f"{target} already exists and is not empty", hint="choose another --path or remove it")
    written = []
    for relative, text in render(spec, in_repo=in_repo).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
