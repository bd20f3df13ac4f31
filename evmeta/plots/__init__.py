"""Publication figures. Every function takes a result, returns a matplotlib Figure,
accepts ``ax=``, computes no statistics of its own and never calls ``show()``."""

from evmeta.plots._style import FigureError, FigurePages, save_figure
from evmeta.plots.dose_response import dose_response_plot
from evmeta.plots.forest import forest_plot
from evmeta.plots.funnel import funnel_plot
from evmeta.plots.moderators import moderator_plot
from evmeta.plots.posterior import posterior_plot
from evmeta.plots.risk_of_bias import risk_of_bias_plot

__all__ = [
    "FigureError",
    "FigurePages",
    "dose_response_plot",
    "forest_plot",
    "funnel_plot",
    "moderator_plot",
    "posterior_plot",
    "risk_of_bias_plot",
    "save_figure",
]
