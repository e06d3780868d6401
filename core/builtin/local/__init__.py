"""Built-in ``local``: an in-process supervisor (code and hookimpls together)."""
