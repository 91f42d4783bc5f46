"""Time for the sans-IO DHT: a clock read in milliseconds and timers that fire when told to.

The DHT's state machines never sleep and never read a clock of their own. They ask a
:class:`TimerQueue` for ``now()`` and register callbacks with ``call_later``; whoever owns the
queue (the Trio node, or a simulation driving thousands of nodes on one virtual clock) moves
time forward with :meth:`TimerQueue.advance`, which runs every callback that is due.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["Timer", "TimerQueue"]


class Timer:
    """A callback registered for a deadline; :meth:`cancel` keeps it from running."""

    __slots__ = ("callback", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None] | None) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback

    @property
    def cancelled(self) -> bool:
        return self.callback is None

    def cancel(self) -> None:
        self.callback = None

    def __lt__(self, other: Timer) -> bool:
        if self.deadline != other.deadline:
            return self.deadline < other.deadline
        return self.seq < other.seq


class TimerQueue:
    """Timers on one clock in milliseconds. ``now`` starts at ``start`` and only moves forward.

    ``on_schedule(deadline)``, if set, is called when a timer earlier than every other one is
    added, so an owner that sleeps until :meth:`next_deadline` can wake up sooner.
    """

    __slots__ = ("_heap", "_now", "_seq", "on_schedule")

    def __init__(self, start: float = 0.0) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._now = start
        self._seq = 0
        self.on_schedule: Callable[[float], None] | None = None

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once ``delay`` milliseconds from now have passed."""
        return self.call_at(self._now + max(0.0, delay), callback)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        self._seq += 1
        timer = Timer(deadline, self._seq, callback)
        earliest = not self._heap or deadline < self._heap[0][0]
        heapq.heappush(self._heap, (deadline, self._seq, timer))
        if earliest and self.on_schedule is not None:
            self.on_schedule(deadline)
        return timer

    def next_deadline(self) -> float | None:
        """The deadline of the next live timer, or None."""
        heap = self._heap
        while heap and heap[0][2].callback is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance(self, now: float) -> int:
        """Move the clock to ``now`` (never backwards) and run every due timer, in order.

        Each callback runs with the clock at its own deadline, so a simulation that jumps far
        ahead still sees every timer fire at its time.

        Returns how many callbacks ran. A callback may add timers; those that are already due
        run in the same call.
        """
        target = max(now, self._now)
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= target:
            deadline, _, timer = heapq.heappop(heap)
            callback = timer.callback
            if callback is None:
                continue
            timer.callback = None
            if deadline > self._now:
                self._now = deadline
            callback()
            ran += 1
        self._now = target
        return ran

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if t.callback is not None)
