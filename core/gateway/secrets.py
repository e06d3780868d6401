"""Read the keys and secrets a trigger's ``auth`` names, once, when the gateway starts.

Messages name where a value was looked for (the variable, the file), never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from core.errors import PipelineError
from hookspecs import Secret


def read_secrets(secrets: Sequence[Secret], where: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every key held by ``secrets``: whitespace-separated in a variable, one a line in a file.

    :raises PipelineError: a variable not set, a file not readable, or nothing in them.
    """
    environ = os.environ if environ is None else environ
    values: list[str] = []
    for secret in secrets:
        if secret.env is not None:
            text = environ.get(secret.env)
            if text is None:
                raise PipelineError(f"{where}: its auth reads the {secret.where}, which is not set",
                                    hint=f"export {secret.env}=<key> before starting the gateway")
        else:
            assert secret.file is not None
            try:
                with open(secret.file, encoding="utf-8") as file:
                    text = "\n".join(line for line in file if not line.lstrip().startswith("#"))
            except (OSError, UnicodeDecodeError) as exc:
                raise PipelineError(f"{where}: its auth reads the {secret.where}, which cannot be read: "
                                    f"{getattr(exc, 'strerror', None) or type(exc).__name__}",
                                    hint="create the file (one key a line) readable by the gateway") from None
        found = text.split()
        if not found:
            raise PipelineError(f"{where}: the {secret.where} holds no key",
                                hint="put at least one key in it (several separated by whitespace)")
        values.extend(found)
    return values
