"""A clashing test plugin."""
