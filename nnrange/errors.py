"""One exception family for everything nnrange reports to its users.

Every message says what was wrong, where (file, node, op type, dimension) and what to do.
"""

from __future__ import annotations


class NNRangeError(Exception):
    """Base class of every error nnrange raises on purpose."""


class ModelLoadError(NNRangeError):
    """A model file or object could not be read or converted."""


class UnsupportedOperatorError(ModelLoadError):
    """The model uses operators or layers nnrange does not support.

    ``problems`` lists every offending ``(op_type, node_name, reason)`` at once.
    """

    def __init__(self, problems: list[tuple[str, str, str]], source: str = "model"):
        self.problems = list(problems)
        lines = [f"{source} uses {len(self.problems)} unsupported operator(s)/layer(s):"]
        for op, name, reason in self.problems:
            lines.append(f"  - {op} (node '{name}'): {reason}")
        lines.append(
            "The README's 'Supported models' section lists what nnrange reads; export the "
            "model without these operators, or open an issue with the model attached."
        )
        super().__init__("\n".join(lines))


class GraphError(NNRangeError):
    """The internal layer graph is inconsistent (shapes, missing inputs, cycles)."""


class BoxError(NNRangeError, ValueError):
    """The input box is malformed (lo > hi, NaN/inf, wrong size)."""


class SpecError(NNRangeError):
    """A property file (VNN-LIB) is malformed or uses an unsupported construct."""


class EngineError(NNRangeError):
    """An engine cannot handle this graph or these options."""


class UnsoundBoundError(NNRangeError):
    """A concrete input reached a value outside a proven outer bound: a bug in nnrange."""
