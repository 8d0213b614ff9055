"""Data helpers: time-series windows, splits and scaling; a character vocabulary; the
small real data sets shipped with the package (no network needed).

``timeseries_windows`` follows ``keras.utils.timeseries_dataset_from_array``'s arguments
and returns NumPy arrays; everything else here is plain NumPy too.
"""
from .datasets import load_co2, load_csv_series, load_inferno
from .series import Scaler, split_in_time, timeseries_windows
from .text import Vocabulary

__all__ = [
    "Scaler", "Vocabulary", "load_co2", "load_csv_series", "load_inferno", "split_in_time",
    "timeseries_windows",
]
