"""The search's processes: signals (one ``KeyboardInterrupt`` per Ctrl-C/SIGTERM, workers that
die with their parent, stopping children) and how many torch threads each trial gets."""

from odeattn.search.processes._signals import die_with_parent, interrupt_once, stop_children
from odeattn.search.processes._threads import choose_threads

__all__ = [
    "choose_threads",
    "die_with_parent",
    "interrupt_once",
    "stop_children",
]
