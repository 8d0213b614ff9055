"""Reading a series from a CSV file, and the two small data sets shipped with the package.

The shipped files live in ``unrolled/data/files/`` (sources and licences in its README.md)
and are read through ``importlib.resources``: no network, no download cache.
"""
import csv
import io
import os
from importlib import resources

import numpy as np

MISSING = ("", "na", "nan", "null", "none", "?")   # cells read as missing (case-insensitive)


def _open_text(source):
    if isinstance(source, (str, os.PathLike)):
        return open(source, newline="", encoding="utf-8")
    if isinstance(source, io.TextIOBase) or hasattr(source, "read"):
        return source
    raise TypeError(f"Expected a path or an open text file; received {type(source).__name__}.")


def load_csv_series(source, column, index=None, comment="#"):
    """One numeric column of a CSV file as a float64 array, in file order.

    ``source`` is a path or an open text file whose first non-comment line is the header;
    lines starting with ``comment`` are skipped. ``column`` (and ``index``) name a header
    field or give its position. With ``index``, returns ``(index_values, values)``, the
    index as strings (e.g. dates).

    A missing value (an empty cell, ``NA``, ``nan``, ...) or a non-number is an error that
    names the file line: a series with holes cannot be windowed as is, and silently
    dropping a row would shift every later time step. Fill or cut the gaps first.
    """
    name = getattr(source, "name", source if isinstance(source, (str, os.PathLike)) else "<file>")
    f = _open_text(source)
    try:
        numbered = ((i, line) for i, line in enumerate(f, start=1)
                    if not (comment and line.lstrip().startswith(comment)) and line.strip())
        line_numbers, lines = [], []
        for i, line in numbered:
            line_numbers.append(i)
            lines.append(line)
    finally:
        if f is not source:
            f.close()
    rows = list(csv.reader(lines))
    if not rows:
        raise ValueError(f"{name}: no header line and no data.")
    header = [h.strip() for h in rows[0]]

    def position(key, what):
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= key < len(header):
                raise ValueError(f"{name}: {what} position {key} is out of range; the header has "
                                 f"{len(header)} fields: {header}.")
            return int(key)
        if key not in header:
            raise ValueError(f"{name}: no {what} named {key!r}; the header has {header}.")
        return header.index(key)

    col = position(column, "column")
    idx = None if index is None else position(index, "index column")
    values, labels = [], []
    for line_no, row in zip(line_numbers[1:], rows[1:]):
        label = row[0] if row else ""
        cell = row[col].strip() if col < len(row) else ""
        if cell.lower() in MISSING:
            raise ValueError(
                f"{name}, line {line_no} (row {label!r}): missing value in column "
                f"{header[col]!r}. Fill or remove the gap before windowing the series."
            )
        try:
            values.append(float(cell))
        except ValueError:
            raise ValueError(f"{name}, line {line_no} (row {label!r}): {cell!r} in column "
                             f"{header[col]!r} is not a number.") from None
        if idx is not None:
            labels.append(row[idx].strip() if idx < len(row) else "")
    if not values:
        raise ValueError(f"{name}: the header has no data rows after it.")
    values = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{name}, line {line_numbers[bad + 1]}: value {values[bad]} is not finite.")
    return (np.array(labels), values) if index is not None else values


def _file(name):
    return resources.files("unrolled.data").joinpath("files", name)


def load_co2():
    """Monthly mean CO2 at Mauna Loa, 1965-01 to 2001-12: ``(months, ppm)``, 444 values.

    ``months`` are ``"YYYY-MM"`` strings, ``ppm`` float64. Source: Scripps (Keeling and
    Whorf) weekly averages as shipped by statsmodels; public domain (see files/README.md).
    """
    with _file("co2_mauna_loa_monthly.csv").open("r", encoding="utf-8", newline="") as f:
        return load_csv_series(f, "co2_ppm", index="month")


def load_inferno(raw=False):
    """Dante's Inferno, Cantos I-III, as one string (Project Gutenberg text, public domain).

    By default each line's leading indentation is removed; the canto headings
    (``Inferno • Canto I``) and the blank lines between tercets stay. ``raw=True`` returns
    the file exactly as shipped.
    """
    text = _file("inferno_1-3.txt").read_text(encoding="utf-8")
    if raw:
        return text
    return "\n".join(line.strip() for line in text.split("\n"))
