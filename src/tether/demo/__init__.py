"""`tether demo`: the whole loop on the example project, in one process."""

from tether.demo.run import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
