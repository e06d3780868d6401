"""The embedded defaults, registered through the same hooks as any external plugin.

Each module here is a light plugin module: it holds hookimpls only and imports its
implementation inside the factory, exactly as a third-party plugin must.
"""
