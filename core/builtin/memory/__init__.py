"""Built-in ``memory``: in-process pub/sub (code and hookimpls together)."""
