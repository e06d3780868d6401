"""Project templates written by ``core init`` (package data, shipped in the wheel)."""
