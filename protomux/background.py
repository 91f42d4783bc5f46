"""Moved: :class:`BackgroundNursery` lives in :mod:`protomux._toolkit` (the project's private
Trio toolkit). This module re-exports it until its importers move to the toolkit."""

from __future__ import annotations

from ._toolkit import BackgroundNursery

__all__ = ["BackgroundNursery"]
