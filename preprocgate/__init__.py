"""preprocgate: a declarative regression gate for ML inference preprocessing.

>>> from preprocgate import load_gate, run_gate
>>> result = run_gate(load_gate("gates/demo.yaml"))
>>> bool(result)  # True when every declared check passed
"""

from preprocgate.engine import run_gate
from preprocgate.errors import PreprocgateError, PublishError, RunError, SpecError, UserError
from preprocgate.results import CheckResult, GateResult, PairResult, Timing
from preprocgate.spec import Gate, GateSpec, load_gate
from preprocgate.version import __version__

__all__ = [
    "CheckResult",
    "Gate",
    "GateResult",
    "GateSpec",
    "PairResult",
    "PreprocgateError",
    "PublishError",
    "RunError",
    "SpecError",
    "Timing",
    "UserError",
    "__version__",
    "load_gate",
    "run_gate",
]
