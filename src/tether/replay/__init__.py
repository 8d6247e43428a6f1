"""`tether replay`: the whole loop (server, labels, controller, registry) over a real
history in simulated time, beside the policies teams run today (docs/replay.md)."""

from tether.replay.arms import Arm, parse_compare
from tether.replay.history import History, ReplayInputError, load_history
from tether.replay.run import ReplayOptions, replay

__all__ = ["Arm", "History", "ReplayInputError", "ReplayOptions", "load_history",
           "parse_compare", "replay"]
