"""A test plugin for core."""
