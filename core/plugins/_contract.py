"""Contract compatibility: does a plugin's declared ``CORE_CONTRACT`` range admit this host's?

A plugin module declares the contract versions it supports as a PEP 440 specifier
(``CORE_CONTRACT = ">=1.0,<2"``); the host checks it after import and before registering,
so an incompatible plugin is listed as an error naming both versions instead of failing later.
"""

from __future__ import annotations

from types import ModuleType

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from hookspecs import __contract__

#: The module attribute a plugin declares its supported contract range in.
ATTRIBUTE = "CORE_CONTRACT"


def example_range() -> str:
    """The range a plugin written against this contract declares: ``>=1.0,<2``."""
    return f">={__contract__},<{int(__contract__.split('.')[0]) + 1}"


def check_contract(module: ModuleType) -> tuple[str | None, str | None]:
    """``(error, warning)`` for ``module``'s declared range against this host's contract.

    An error means the plugin must not be registered; a warning (nothing declared) means it is
    loaded as compatible, as the policy in docs/compatibility.md says.
    """
    declared = getattr(module, ATTRIBUTE, None)
    if declared is None:
        return None, (
            f"declares no {ATTRIBUTE}; assumed compatible with contract {__contract__} "
            f"(add {ATTRIBUTE} = {example_range()!r} to its module)"
        )
    try:
        supported = SpecifierSet(str(declared))
    except InvalidSpecifier:
        return (
            f"{ATTRIBUTE} = {declared!r} is not a version range; write e.g. {example_range()!r}"
        ), None
    if __contract__ not in supported:
        return (
            f"supports core contract {declared} but this core implements contract {__contract__}; "
            "install a plugin release for this contract or a core whose contract it supports"
        ), None
    return None, None
