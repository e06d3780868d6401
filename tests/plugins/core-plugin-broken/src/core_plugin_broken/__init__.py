"""A broken test plugin."""
