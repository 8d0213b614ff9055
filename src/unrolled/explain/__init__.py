"""Explain a recurrent network: its values step by step, its equations with numbers, its
gradients through time, plain NumPy code that reproduces it, and a one-file HTML report.

Everything here needs NumPy alone, except ``to_dataframe`` (pandas) and the plots and
the report's pictures (matplotlib), imported inside the functions that use them
(``pip install unrolled[explain]``).
"""
from .codegen import to_numpy_code
from .equations import Equations, equations
from .flow import GradientFlow, LayerFlow, gradient_flow, step_jacobian
from .plots import (plot_attention, plot_cell_state, plot_forecast, plot_gates,
                    plot_gradient_flow, plot_hidden_states, plot_history)
from .report import report
from .trace import LayerTrace, Trace, trace

__all__ = [
    "Equations", "GradientFlow", "LayerFlow", "LayerTrace", "Trace", "equations",
    "gradient_flow", "plot_attention", "plot_cell_state", "plot_forecast", "plot_gates", "plot_gradient_flow",
    "plot_hidden_states", "plot_history", "report", "step_jacobian", "to_numpy_code", "trace",
]
