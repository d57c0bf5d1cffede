"""Astra's plugins: the hook specifications, the manager, and the default plugin set.

A plugin marks its hook functions with `hookimpl`:

    from astra.plugins import hookimpl

    @hookimpl
    def astra_cart_adjustments(ctx, cart): ...
"""

from __future__ import annotations

import pluggy

PROJECT = "astra"

# Defined here rather than in hookspecs.py so a plugin's import is one short, stable line.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl"]
