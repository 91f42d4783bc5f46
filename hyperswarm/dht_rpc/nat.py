"""Our public address as other nodes report it (a port of nat-sampler 1.0.1).

Every reply tells a node the address its request came from. The sampler keeps the last 16
reports, each twice: once as (host, port) and once as (host, 0) for "this host, whatever the
port". Equal reports share one sample object whose ``hits`` counts its occurrences in the
window; a new report only joins one of the (up to) 4 previous samples of its kind, so reports
of one address that arrive interleaved with more than three others are counted apart.

The answer (``host``/``port``) is the most hit (host, port) when its hits reach the
threshold, else the most hit host with ``port`` 0 (a NAT that changes ports), else nothing.
The threshold is the number of reports so far (at most 16), less 0 below 4 reports, 1 below
8, 2 below 12 and 3 from there on. The most hit samples are only replaced by samples with
more hits, so they can keep counting down as the window moves on, as in JS.
"""

from __future__ import annotations

__all__ = ["NatSampler"]

WINDOW = 32  # slots: 16 reports, each as (host, port) and as (host, 0)
LOOKBACK = 4


class _Sample:
    __slots__ = ("hits", "host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.hits = 1

    def __repr__(self) -> str:
        return f"_Sample({self.host!r}, {self.port}, hits={self.hits})"


class NatSampler:
    """See the module docstring. ``size`` is the number of reports in the window (<= 16)."""

    __slots__ = ("_a", "_b", "_samples", "_threshold", "_top", "host", "port", "size")

    def __init__(self) -> None:
        self.host: str | None = None
        self.port = 0
        self.size = 0
        self._a: _Sample | None = None
        self._b: _Sample | None = None
        self._threshold = 0
        self._top = 0
        self._samples: list[_Sample] = []

    @property
    def threshold(self) -> int:
        return self._threshold

    def add(self, host: str, port: int) -> int:
        """Count one report of our address; returns the hits of this (host, port) now."""
        a = self._bump(host, port, 2)
        b = self._bump(host, 0, 1)
        samples = self._samples

        if len(samples) < WINDOW:
            self.size += 1
            size = self.size
            self._threshold = size - (0 if size < 4 else 1 if size < 8 else 2 if size < 12 else 3)
            samples.append(a)
            samples.append(b)
            self._top += 2
        else:
            if self._top == WINDOW:
                self._top = 0
            old_a = samples[self._top]
            samples[self._top] = a
            self._top += 1
            old_a.hits -= 1
            old_b = samples[self._top]
            samples[self._top] = b
            self._top += 1
            old_b.hits -= 1

        if self._a is None or self._a.hits < a.hits:
            self._a = a
        if self._b is None or self._b.hits < b.hits:
            self._b = b

        if self._a.hits >= self._threshold:
            self.host = self._a.host
            self.port = self._a.port
        elif self._b.hits >= self._threshold:
            self.host = self._b.host
            self.port = 0
        else:
            self.host = None
            self.port = 0

        return a.hits

    def _bump(self, host: str, port: int, inc: int) -> _Sample:
        samples = self._samples
        for i in range(LOOKBACK):
            j = (self._top - inc - 2 * i) & (WINDOW - 1)
            if j >= len(samples):
                break
            s = samples[j]
            if s.port == port and s.host == host:
                s.hits += 1
                return s
        return _Sample(host, port)

    def __repr__(self) -> str:
        return f"NatSampler(host={self.host!r}, port={self.port}, size={self.size})"
