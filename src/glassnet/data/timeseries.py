"""Time series as windowed sequence datasets: user CSV files and the sunspots, co2 and ecg built-ins.

A forecasting example is a window of ``lookback`` rows (``T x C``: time first, channels last, in
natural units) and its target is the next ``horizon`` rows of the target columns, shaped
``(horizon, n_targets)``. The series is split chronologically (train, then validation, then test,
never shuffled) and windows are cut per split, so a target row belongs to exactly one split. The
inputs of the first validation and test windows reach back into the preceding split: those rows
are known at prediction time, so using them is context, not leakage. Scaling statistics are
fitted on the training windows only (``bundle_from_splits``).

Time-series CSV files hold a time column first, then one or more value columns. Rows are sorted
by time when the time column parses as dates or numbers (files exported from databases are often
unordered); two rows with the same time are an error, since the series would be ambiguous.
"""

from __future__ import annotations

import csv
import gzip
import importlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glassnet.data.bundle import DataBundle, bundle_from_arrays, bundle_from_splits
from glassnet.data.encoding import not_utf8
from glassnet.data.locate import data_roots, find_data
from glassnet.data.registry import register_dataset, register_format
from glassnet.errors import ConfigError, DataError, closest

TIME_HEADERS = frozenset({"date", "time", "timestamp", "datetime", "ds", "month", "year", "period", "t"})
FILLS = ("error", "interpolate", "ffill")
MISSING = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "none", "-", "?"})
STATSMODELS_HINT = "install statsmodels: pip install statsmodels (or pip install 'glassnet[timeseries]')"
STATSMODELS_SOURCE = "statsmodels datasets (bundled with the package, public domain)"
ECG_FILE = "ecg/mitdb.csv"
ECG_RATE = 360.0  # Hz, the MIT-BIH sampling rate
ECG_SEGMENTS = ("beats", "windows")
ECG_BEFORE, ECG_AFTER = 90, 110  # samples around the R peak: P wave to T wave at normal rates
ECG_WINDOW = 100
ECG_SOURCE = "MIT-BIH arrhythmia database excerpt shipped with sktime 1.2.0 (BSD-3); $GLASSNET_DATA/ecg/mitdb.csv"
SHOWN = 5  # how many offending rows an error message lists


def is_timeseries_csv(path: Path) -> bool:
    """Whether ``path`` is a ``.csv``/``.csv.gz`` file whose first header cell names a time column.

    Args:
        path: a user path.

    Returns:
        True when the first header cell is one of ``date, time, timestamp, datetime, ds, month,
        year, period, t`` (case-insensitive).
    """
    name = path.name.lower()
    if not path.is_file() or not (name.endswith(".csv") or name.endswith(".csv.gz")):
        return False
    try:
        # a bad byte further on must not hide the header: the loader reports that byte with its line
        with _open_text(path, errors="replace") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, csv.Error, EOFError):
        return False
    return bool(header) and header[0].strip().lower() in TIME_HEADERS


@register_format(
    "timeseries",
    detect=is_timeseries_csv,
    description="time-series CSV: a time column, then one or more value columns",
    example="glassnet train --data sales.csv --model mlp data.lookback=48 data.horizon=12",
)
def load_timeseries(
    path: str | Path,
    columns: str | Sequence[str] | None = None,
    target: str | Sequence[str] | None = None,
    lookback: int = 24,
    horizon: int = 1,
    stride: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    fill: str = "error",
) -> DataBundle:
    """Load a time-series CSV as a forecasting ``DataBundle`` of ``lookback -> horizon`` windows.

    The first column is the time column; rows are sorted by it when it parses as dates or numbers
    (otherwise the file order is kept). Missing cells are empty or ``NA``/``NaN``/``null``.

    Args:
        path: a ``.csv`` or ``.csv.gz`` file with a header row.
        columns: value columns used as inputs (a list, or one string with commas); default: every
            numeric column after the time column (a column counts as numeric when at least half of
            its filled cells are numbers; the others are skipped and listed in ``info``).
        target: columns to forecast (default: all used columns); a target missing from
            ``columns`` is added to the inputs, since its own past is what predicts it best.
        lookback: rows of history in each input window.
        horizon: rows ahead that each window forecasts.
        stride: rows between the starts of consecutive windows.
        val_fraction: share of rows (after the training part) for validation; 0 gives no
            validation split.
        test_fraction: share of the last rows for the test split.
        fill: what to do with missing values: ``error``, ``interpolate`` (linear in time; the
            ends are held at the nearest value) or ``ffill`` (carry the last value forward).

    Returns:
        A bundle with inputs ``(N, lookback, C)`` and targets ``(N, horizon, n_targets)``.

    Raises:
        ConfigError: an option has a bad value (lookback < 1, fractions leaving an empty split,
            unknown ``fill``).
        DataError: the file is unreadable, has rows of different lengths, a non-numeric or
            infinite value, missing values with ``fill="error"``, duplicated times, an unknown
            column, or too few rows for the windows.
    """
    check_window_options(lookback, horizon, stride, val_fraction, test_fraction)
    if fill not in FILLS:
        raise ConfigError(f"fill must be one of {', '.join(FILLS)}. Received: fill={fill!r}")
    path = Path(path)
    header, rows, lines = _read_rows(path)
    order, clock = _time_order(path, header[0], [row[0] for row in rows], lines)
    used, targets, skipped = _choose_columns(path, header, rows, columns, target)
    values = _numeric_values(path, header, rows, lines, used)[order]
    lines, times = lines[order], [rows[i][0].strip() for i in order]
    values = fill_missing(values, used, fill, where=f"'{path}'", labels=[f"line {n}" for n in lines], x=clock)
    return forecast_bundle(
        values,
        used,
        targets,
        name=path.name.split(".")[0],
        where=f"'{path}'",
        times=times,
        lookback=lookback,
        horizon=horizon,
        stride=stride,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={
            "source": str(path),
            "format": "timeseries",
            "time_column": header[0],
            "skipped_columns": skipped,
            "sorted_by_time": bool(clock is not None and np.any(order != np.arange(len(order)))),
            "fill": fill,
        },
    )


def check_window_options(lookback: int, horizon: int, stride: int, val_fraction: float, test_fraction: float) -> None:
    """Raise ``ConfigError`` quoting the first bad window or split option.

    Raises:
        ConfigError: lookback, horizon or stride is not an integer >= 1, or the fractions leave
            an empty training or test split.
    """
    for key, value in (("lookback", lookback), ("horizon", horizon), ("stride", stride)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be an integer >= 1. Received: {key}={value!r}")
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key} must be a number. Received: {key}={value!r}")
    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            "the fractions leave an empty split: need 0 < test_fraction < 1, 0 <= val_fraction < 1 and "
            f"val_fraction + test_fraction < 1 (the rest trains). Received: val_fraction={val_fraction}, "
            f"test_fraction={test_fraction}"
        )


def fill_missing(
    values: np.ndarray, names: Sequence[str], fill: str, *, where: str, labels: Sequence[str], x: np.ndarray | None
) -> np.ndarray:
    """Fill the NaNs of a ``rows x columns`` array as ``fill`` says.

    Args:
        values: the series, NaN where a value is missing.
        names: one name per column, for messages.
        fill: ``error``, ``interpolate`` or ``ffill``.
        where: the file or dataset, for messages.
        labels: one label per row (e.g. ``line 7``), for messages.
        x: the time of each row as numbers (interpolation weights), or None for evenly spaced rows.

    Returns:
        The array without NaNs (a copy when anything was filled).

    Raises:
        DataError: values are missing and ``fill`` is ``error``; a column has no value at all; or
            ``ffill`` meets missing values before a column's first value.
    """
    missing = np.isnan(values)
    if not missing.any():
        return values
    rows = np.flatnonzero(missing.any(axis=1))
    if fill == "error":
        shown = [f"{labels[r]} ({', '.join(repr(names[c]) for c in np.flatnonzero(missing[r]))})" for r in rows]
        raise DataError(
            f"{where} has missing values in {len(rows)} rows, first at {_listing(shown)}. Fill them in the file, "
            "or pass data.fill=interpolate (linear in time) or data.fill=ffill (carry the last value forward)"
        )
    values = values.copy()
    positions = np.arange(len(values), dtype=np.float64) if x is None else x
    for column in np.flatnonzero(missing.any(axis=0)):
        values[:, column] = _fill_column(values[:, column], positions, fill, names[column], where, labels)
    return values


def forecast_bundle(
    values: np.ndarray,
    channels: Sequence[str],
    targets: Sequence[str],
    *,
    name: str,
    where: str,
    times: Sequence[str] | None = None,
    lookback: int = 24,
    horizon: int = 1,
    stride: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    info: dict[str, Any] | None = None,
) -> DataBundle:
    """Cut a clean, time-ordered series into per-split ``lookback -> horizon`` forecasting windows.

    Args:
        values: ``rows x channels`` array in natural units, oldest row first, no NaN.
        channels: one name per column of ``values`` (all are inputs).
        targets: the channels to forecast.
        name: dataset name recorded in the spec.
        where: the file or dataset, for messages.
        times: one time label per row, recorded in ``info`` for each split (default: row numbers).
        lookback: rows of history per window.
        horizon: rows forecast per window.
        stride: rows between window starts.
        val_fraction: share of rows for validation (after the training rows).
        test_fraction: share of the last rows for the test split.
        info: provenance added to ``DataBundle.info``.

    Returns:
        The bundle; ``spec.extra`` holds ``lookback``, ``horizon`` and ``target_names``.

    Raises:
        ConfigError: a window or split option is bad.
        DataError: the series, or one of its splits, is too short for one window.
    """
    check_window_options(lookback, horizon, stride, val_fraction, test_fraction)
    bounds = _split_bounds(len(values), lookback, horizon, val_fraction, test_fraction, where)
    target_index = [list(channels).index(t) for t in targets]
    times = list(times) if times is not None else [str(i) for i in range(len(values))]
    splits, periods = [], {}
    for split, (start, stop) in zip(("train", "val", "test"), bounds):
        ends = np.arange(max(start, lookback), stop - horizon + 1, stride)  # first target row of each window
        x = values[ends[:, None] + np.arange(-lookback, 0)]
        y = values[ends[:, None] + np.arange(horizon)][:, :, target_index]
        splits.append((x.astype(np.float32), y.astype(np.float32)))
        periods[split] = {"rows": stop - start, "windows": len(ends)}
        if stop > start:
            periods[split].update({"from": times[start], "to": times[stop - 1]})
    window_info = {"lookback": lookback, "horizon": horizon, "stride": stride}
    return bundle_from_splits(
        *splits,
        name=name,
        modality="sequence",
        task="forecast",
        feature_names=tuple(channels),
        extra={**window_info, "target_names": list(targets)},
        info={
            **(info or {}),
            **window_info,
            "columns": list(channels),
            "target": list(targets),
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "periods": periods,
        },
    )


def _split_bounds(
    n: int, lookback: int, horizon: int, val_fraction: float, test_fraction: float, where: str
) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of train, val and test, each checked to hold a window."""
    need = lookback + horizon
    if n < need:
        raise DataError(
            f"{where} needs at least {need} rows for lookback {lookback} + horizon {horizon}; has {n}. "
            "Use a longer series or lower data.lookback / data.horizon"
        )
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    bounds = [(0, n - n_val - n_test), (n - n_val - n_test, n - n_test), (n - n_test, n)]
    fix = "lower data.lookback / data.horizon, change data.val_fraction / data.test_fraction, or use a longer series"
    if bounds[0][1] < need:
        raise DataError(
            f"{where}: the train split (the first {bounds[0][1]} of {n} rows) needs at least {need} rows for "
            f"lookback {lookback} + horizon {horizon}; has {bounds[0][1]}. To fix it, {fix}"
        )
    for split, (start, stop), fraction in (("val", bounds[1], val_fraction), ("test", bounds[2], test_fraction)):
        if fraction > 0 and stop - start < horizon:
            raise DataError(
                f"{where}: the {split} split ({split}_fraction={fraction} of {n} rows) needs at least {horizon} "
                f"rows for horizon {horizon} (its inputs may look back into the split before it); has "
                f"{stop - start}. To fix it, {fix}"
            )
    return bounds


def _fill_column(
    column: np.ndarray, x: np.ndarray, fill: str, name: str, where: str, labels: Sequence[str]
) -> np.ndarray:
    known = ~np.isnan(column)
    if not known.any():
        raise DataError(f"{where}: column {name!r} has no values at all; remove it or name other data.columns")
    if fill == "interpolate":
        return np.interp(x, x[known], column[known])  # np.interp holds the ends at the nearest value
    first = int(np.argmax(known))
    if first > 0:
        raise DataError(
            f"{where}: column {name!r} is missing its first values ({_listing(list(labels[:first]))}), "
            "which data.fill=ffill cannot fill; use data.fill=interpolate or remove those rows"
        )
    last_known = np.maximum.accumulate(np.where(known, np.arange(len(column)), 0))
    return column[last_known]


def _listing(entries: list[str]) -> str:
    """The first ``SHOWN`` entries joined by commas, with an ellipsis when there are more."""
    return ", ".join(entries[:SHOWN]) + (" ..." if len(entries) > SHOWN else "")


def _open_text(path: Path, errors: str = "strict") -> Any:
    """Open a ``.csv`` or ``.csv.gz`` file as text (a UTF-8 byte-order mark is dropped)."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors=errors, newline="")
    return path.open(encoding="utf-8-sig", errors=errors, newline="")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Header, data rows and the line number of each row; rows must match the header's length."""
    if not path.is_file():
        raise DataError(f"time-series file '{path}' not found")
    rows, lines = [], []
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = [cell.strip() for cell in next(reader, [])]
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines are not rows
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as exc:  # the stream decodes ahead of the rows read: find the bad byte's line
        raise not_utf8(path, lead=f"cannot read time-series CSV '{path}': it is not UTF-8 text") from exc
    except (OSError, csv.Error, EOFError) as exc:
        raise DataError(f"cannot read time-series CSV '{path}': {exc}. It must be UTF-8 text (or gzip of it)") from exc
    if len(header) < 2:
        raise DataError(
            f"'{path}' needs a header row with a time column, then one or more value columns; "
            f"found {header or 'an empty file'}"
        )
    for row, line in zip(rows, lines):
        if len(row) != len(header):
            raise DataError(
                f"'{path}' line {line} has {len(row)} cells but the header has {len(header)} "
                f"({', '.join(header)}); every row needs one cell per column"
            )
    return header, rows, np.asarray(lines, dtype=np.int64)


def _time_order(path: Path, column: str, cells: list[str], lines: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The order that sorts rows by time, and each row's time as a number (None if not parsed).

    Times that are all numbers or all dates are sorted; times that are neither keep the file
    order; a mix (some parse, some do not) is a typo and an error, as are duplicated times.
    """
    order = np.arange(len(cells))
    clock = _parse_times(cells)
    if clock is None:
        return order, None
    bad = np.flatnonzero(np.isnan(clock))
    if len(bad):
        shown = [f"line {lines[i]} ({cells[i].strip()!r})" for i in bad]
        raise DataError(
            f"'{path}' time column {column!r}: cannot read {_listing(shown)} as a time like the other rows; "
            "use one date format (e.g. 2024-01-31) or numbers throughout"
        )
    order = np.argsort(clock, kind="stable")
    repeated = np.flatnonzero(np.diff(clock[order]) == 0)
    if len(repeated):
        i, j = order[repeated[0]], order[repeated[0] + 1]
        raise DataError(
            f"'{path}' time column {column!r}: lines {lines[i]} and {lines[j]} both have time {cells[i].strip()!r} "
            f"({len(repeated)} repeated times in all); a series needs one row per time, so aggregate or remove them"
        )
    return order, clock[order]


def _parse_times(cells: list[str]) -> np.ndarray | None:
    """Times as float64 (numbers as they are, dates as nanoseconds), NaN where a cell does not parse."""
    text = pd.Series([cell.strip() for cell in cells], dtype=object)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() > 0.5:
        return numbers.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": we check the result ourselves
        try:
            dates = pd.to_datetime(text, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            return None
    if dates.notna().mean() <= 0.5:
        return None
    clock = dates.astype("datetime64[ns]").to_numpy().astype(np.int64).astype(np.float64)
    clock[dates.isna().to_numpy()] = np.nan
    return clock


def _choose_columns(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    columns: str | Sequence[str] | None,
    target: str | Sequence[str] | None,
) -> tuple[list[str], list[str], list[str]]:
    """The input columns, the target columns and the value columns skipped as non-numeric."""
    available = header[1:]
    if columns is not None:
        used, skipped = _names(path, header, columns, "columns"), []
    else:
        used = [name for i, name in enumerate(available, start=1) if _mostly_numeric([r[i] for r in rows])]
        skipped = [name for name in available if name not in used]
        if not used:
            raise DataError(
                f"'{path}' has no numeric value column after the time column {header[0]!r} "
                f"(columns: {', '.join(available)}); name the columns to use with data.columns=[...]"
            )
    targets = _names(path, header, target, "target") if target is not None else list(used)
    used += [name for name in targets if name not in used]
    return used, targets, skipped


def _names(path: Path, header: list[str], chosen: str | Sequence[str], option: str) -> list[str]:
    """Validate a ``columns``/``target`` option: names of value columns, a list or a comma string."""
    if isinstance(chosen, str):
        chosen = [part.strip() for part in chosen.split(",") if part.strip()]
    if not isinstance(chosen, (list, tuple)) or not chosen or not all(isinstance(c, str) for c in chosen):
        raise ConfigError(f"{option} must be a column name or a list of column names. Received: {option}={chosen!r}")
    available = header[1:]
    for name in chosen:
        if name == header[0]:
            raise DataError(f"'{path}': {option} names {name!r}, the time column; choose from {', '.join(available)}")
        if name not in available:
            guess = closest(name, available)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise DataError(
                f"'{path}' has no column {name!r} (in data.{option}).{hint} Its value columns: {', '.join(available)}"
            )
    return list(dict.fromkeys(chosen))


def _mostly_numeric(cells: list[str]) -> bool:
    filled = [cell for cell in cells if cell.strip().lower() not in MISSING]
    return bool(filled) and pd.to_numeric(pd.Series(filled, dtype=object), errors="coerce").notna().mean() >= 0.5


def _numeric_values(
    path: Path, header: list[str], rows: list[list[str]], lines: np.ndarray, used: list[str]
) -> np.ndarray:
    """The used columns as a float64 ``rows x columns`` array, NaN where a cell is missing."""
    values = np.empty((len(rows), len(used)), dtype=np.float64)
    for j, name in enumerate(used):
        cells = pd.Series([row[header.index(name)].strip() for row in rows], dtype=object)
        missing = cells.str.lower().isin(MISSING).to_numpy()
        numbers = pd.to_numeric(cells.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(numbers) & ~missing)
        if len(bad):
            raise DataError(
                f"'{path}' line {lines[bad[0]]}, column {name!r}: {cells[bad[0]]!r} is not a number "
                f"({len(bad)} such cells in the column). Fix the value, leave the cell empty for a missing value, "
                "or leave the column out of data.columns"
            )
        infinite = np.flatnonzero(np.isinf(numbers))
        if len(infinite):
            raise DataError(
                f"'{path}' line {lines[infinite[0]]}, column {name!r}: {cells[infinite[0]]!r} is infinite; "
                "replace it with a number, or leave the cell empty and pass data.fill=interpolate"
            )
        values[:, j] = numbers
    return values


def _statsmodels_frame(name: str) -> pd.DataFrame:
    """``statsmodels.datasets.<name>`` as a DataFrame, or a ``DataError`` saying how to install it."""
    try:
        module = importlib.import_module(f"statsmodels.datasets.{name}")
    except ImportError as exc:
        raise DataError(
            f"the {name!r} dataset comes with statsmodels, which is not installed; {STATSMODELS_HINT}"
        ) from exc
    return module.load_pandas().data


@register_dataset(
    "sunspots",
    task="forecast",
    modality="sequence",
    size="309 yearly values (1700-2008), 1 channel",
    source=STATSMODELS_SOURCE,
    description="yearly mean sunspot activity (Wolf number); forecast the next year from the last 24",
)
def sunspots(
    lookback: int = 24, horizon: int = 1, stride: int = 1, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> DataBundle:
    """Yearly sunspot activity 1700-2008 (``SUNACTIVITY``) as ``lookback -> horizon`` windows.

    Args:
        lookback: years of history per window.
        horizon: years forecast per window.
        stride: years between window starts.
        val_fraction: share of years for validation (after the training years).
        test_fraction: share of the last years for the test split.

    Raises:
        DataError: statsmodels is not installed, or the options leave a split too short.
        ConfigError: an option has a bad value.
    """
    frame = _statsmodels_frame("sunspots")
    return forecast_bundle(
        frame[["SUNACTIVITY"]].to_numpy(dtype=np.float64),
        ["SUNACTIVITY"],
        ["SUNACTIVITY"],
        name="sunspots",
        where="dataset 'sunspots'",
        times=[str(int(year)) for year in frame["YEAR"]],
        lookback=lookback,
        horizon=horizon,
        stride=stride,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={"source": STATSMODELS_SOURCE, "description": "yearly sunspot activity 1700-2008"},
    )


@register_dataset(
    "co2",
    task="forecast",
    modality="sequence",
    size="526 monthly values (1958-2001), 1 channel",
    source=STATSMODELS_SOURCE,
    description="Mauna Loa atmospheric CO2 (ppm), weekly resampled to monthly means; forecast 12 months from 36",
)
def co2(
    lookback: int = 36, horizon: int = 12, stride: int = 1, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> DataBundle:
    """Mauna Loa CO2: weekly readings with gaps, resampled to monthly means, gaps interpolated in time.

    Args:
        lookback: months of history per window.
        horizon: months forecast per window.
        stride: months between window starts.
        val_fraction: share of months for validation (after the training months).
        test_fraction: share of the last months for the test split.

    Raises:
        DataError: statsmodels is not installed, or the options leave a split too short.
        ConfigError: an option has a bad value.
    """
    monthly = _statsmodels_frame("co2")["co2"].resample("MS").mean()
    # months without a single weekly reading are gaps in a smooth series: interpolate in time
    monthly = monthly.interpolate(method="time").bfill()
    return forecast_bundle(
        monthly.to_numpy(dtype=np.float64)[:, None],
        ["co2"],
        ["co2"],
        name="co2",
        where="dataset 'co2'",
        times=[stamp.strftime("%Y-%m") for stamp in monthly.index],
        lookback=lookback,
        horizon=horizon,
        stride=stride,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={"source": STATSMODELS_SOURCE, "description": "Mauna Loa CO2, monthly means 1958-2001"},
    )


@register_dataset(
    "ecg",
    task="classify",
    modality="sequence",
    size="25 beats of 200 samples, 1 abnormal (segment=windows: 75 windows of 100, 4 abnormal); 360 Hz, 1 channel",
    source=ECG_SOURCE,
    description="MIT-BIH ECG: is a heartbeat normal or the abnormal (premature) beat; R-peak aligned",
)
def ecg(
    segment: str = "beats",
    before: int | None = None,
    after: int | None = None,
    window: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
) -> DataBundle:
    """MIT-BIH ECG excerpt as heartbeats (default) or fixed windows, classified normal or abnormal.

    The file is one recording of 7,500 samples (about 21 s at 360 Hz, 26 beats) with a label per
    sample; the labels mark a single abnormal episode (samples 6936-7287) around one premature beat.

    ``segment="beats"``: R peaks are found by ``detect_r_peaks`` and each beat is the window of
    ``before`` samples before its peak and ``after`` samples from it (``(before + after) x 1``;
    beats whose window leaves the recording are dropped; nothing is resampled). A beat is abnormal
    when the sample at its R peak is labelled 1: MIT-BIH annotates each beat at its R peak, and the
    episode's label spills over onto the T wave of the normal beat before the premature one, which
    an any-sample rule would mark abnormal. The shared file gives 25 beats, 1 abnormal. A class too
    small for a proportional share still gets one example in the test split (then validation), so
    test metrics are defined; here the abnormal beat is the test split's, and no split but test
    holds one: the file suits anomaly detection (train on normal beats), not learning the class.

    ``segment="windows"``: non-overlapping windows of ``window`` samples (the last partial window
    is dropped), abnormal when any sample is labelled 1, split stratified by class (75 windows of
    100, 4 abnormal). These windows are not aligned with the beats.

    Args:
        segment: ``beats`` or ``windows``.
        before: beats only: samples before the R peak (default 90, 0.25 s).
        after: beats only: samples from the R peak on, the peak included (default 110, 0.31 s).
        window: windows only: samples per window (default 100).
        val_fraction: share of examples (per class) for validation.
        test_fraction: share of examples (per class) for the test split.
        split_seed: seed of the stratified split.

    Raises:
        DataError: the file is not found (set ``GLASSNET_DATA``), is malformed, or is too short.
        ConfigError: an option is unknown for the segment or out of range, or the split cannot be made.
    """
    _check_ecg_options(segment, before=before, after=after, window=window)
    check_window_options(1, 1, 1, val_fraction, test_fraction)
    signal, labels, path = _read_ecg()
    if segment == "windows":
        return _ecg_windows(signal, labels, path, window or ECG_WINDOW, val_fraction, test_fraction, split_seed)
    before = ECG_BEFORE if before is None else before
    after = ECG_AFTER if after is None else after
    peaks = detect_r_peaks(signal, rate=ECG_RATE)
    x, kept = beat_windows(signal, peaks, before, after)
    if len(kept) < 3:
        raise DataError(f"'{path}' has {len(kept)} complete beats (R peaks found: {len(peaks)}); it needs >= 3")
    y = labels[kept]
    train, val, test = small_class_split(y, val_fraction, test_fraction, split_seed)
    return bundle_from_splits(
        *((x[part, :, None].astype(np.float32), y[part]) for part in (train, val, test)),
        name="ecg",
        modality="sequence",
        task="classify",
        class_names=("normal", "abnormal"),
        feature_names=("ecg",),
        info={
            "source": str(path),
            "description": "MIT-BIH ECG heartbeats aligned on their R peaks, normal or abnormal",
            "segment": "beats",
            "segmentation": (
                f"R peaks by detect_r_peaks at {ECG_RATE:g} Hz; a beat is samples [peak - {before}, peak + {after}); "
                "abnormal when its R-peak sample is labelled 1; beats that leave the recording are dropped"
            ),
            "before": before,
            "after": after,
            "r_peaks": len(peaks),
            "beats": len(kept),
            "abnormal_beats": int(y.sum()),
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
        },
    )


def _check_ecg_options(segment: str, **options: int | None) -> None:
    """Raise ``ConfigError`` for an unknown segment, an option of the other segment, or a bad size."""
    if segment not in ECG_SEGMENTS:
        raise ConfigError(f"segment must be one of {', '.join(ECG_SEGMENTS)}. Received: segment={segment!r}")
    allowed = ("window",) if segment == "windows" else ("before", "after")
    for key, value in options.items():
        if value is None:
            continue
        if key not in allowed:
            raise ConfigError(
                f"{key} applies to segment={'windows' if key == 'window' else 'beats'}, not segment={segment!r}. "
                f"Received: {key}={value!r}"
            )
        least = 0 if key == "before" else 1  # a beat may start at its R peak, but needs the peak itself
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{key} must be an integer >= {least}. Received: {key}={value!r}")


def _ecg_windows(
    signal: np.ndarray,
    labels: np.ndarray,
    path: Path,
    window: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> DataBundle:
    """Non-overlapping ``window``-sample windows, abnormal when any sample is (``segment="windows"``)."""
    count = len(signal) // window
    if count < 2:
        raise DataError(f"'{path}' has {len(signal)} samples: too few for windows of {window}; use a smaller window")
    x = signal[: count * window].reshape(count, window, 1).astype(np.float32)
    y = labels[: count * window].reshape(count, window).max(axis=1)
    return bundle_from_arrays(
        x,
        y,
        name="ecg",
        modality="sequence",
        task="classify",
        class_names=("normal", "abnormal"),
        feature_names=("ecg",),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=seed,
        info={
            "source": str(path),
            "description": "MIT-BIH ECG windows, normal or abnormal",
            "segment": "windows",
            "segmentation": f"non-overlapping windows of {window} samples, abnormal when any sample is labelled 1",
            "window": window,
        },
    )


def detect_r_peaks(
    signal: np.ndarray,
    rate: float = ECG_RATE,
    band: tuple[float, float] = (5.0, 15.0),
    min_distance: float = 0.25,
    prominence: float = 0.5,
    refine: float = 0.05,
) -> np.ndarray:
    """Sample indices of the R peaks of a single-lead ECG (a Pan-Tompkins-style detector).

    Steps: a zero-phase Butterworth band-pass (order 2, ``band`` Hz) keeps the QRS complex and
    removes baseline wander and most of the P and T waves; the squared derivative of that stresses
    the steep QRS slopes; a moving average over 0.15 s (a QRS width) merges each complex into one
    hump; ``scipy.signal.find_peaks`` then takes humps at least ``min_distance`` seconds apart (the
    refractory period: 0.25 s allows up to 240 beats per minute) whose prominence is at least
    ``prominence`` times the hump signal's standard deviation (a threshold relative to the
    recording's own spread, so it needs no units). Each hump is finally moved to the raw sample
    farthest from the local median within ``refine`` seconds: the R peak itself, of either polarity.

    Args:
        signal: the samples of one lead, in any units.
        rate: sampling rate in Hz.
        band: pass band of the filter in Hz.
        min_distance: shortest time between two beats, in seconds.
        prominence: least prominence of a beat's hump, in standard deviations of the hump signal.
        refine: half-width, in seconds, of the search for the R peak around each hump.

    Returns:
        Sorted int64 indices into ``signal``.

    Raises:
        DataError: the signal is too short to filter (fewer than about 0.1 s of samples).
    """
    from scipy import signal as sp

    signal = np.asarray(signal, dtype=np.float64)
    b, a = sp.butter(2, band, btype="bandpass", fs=rate)
    if len(signal) <= 3 * max(len(a), len(b)):
        raise DataError(f"an ECG of {len(signal)} samples is too short to detect R peaks")
    filtered = sp.filtfilt(b, a, signal)
    width = max(1, round(0.15 * rate))
    humps = np.convolve(np.gradient(filtered) ** 2, np.ones(width) / width, mode="same")
    spread = humps.std()
    if spread == 0:  # a flat line has no beats
        return np.zeros(0, dtype=np.int64)
    found, _ = sp.find_peaks(humps, distance=max(1, round(min_distance * rate)), prominence=prominence * spread)
    reach = max(1, round(refine * rate))
    return np.unique(np.asarray([_r_peak_near(signal, p, reach) for p in found], dtype=np.int64))


def _r_peak_near(signal: np.ndarray, centre: int, reach: int) -> int:
    """The sample within ``reach`` of ``centre`` farthest from the local median: the R peak of either polarity."""
    lo = max(0, centre - reach)
    part = signal[lo : centre + reach + 1]
    return lo + int(np.argmax(np.abs(part - np.median(part))))


def beat_windows(signal: np.ndarray, peaks: np.ndarray, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``signal[peak - before : peak + after]`` around each R peak, dropping those that leave it.

    Args:
        signal: the samples of one lead.
        peaks: R-peak indices (``detect_r_peaks``).
        before: samples kept before each peak.
        after: samples kept from each peak on (the peak included).

    Returns:
        ``(beats, kept)``: a ``len(kept) x (before + after)`` array and the peaks it kept.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    kept = peaks[(peaks - before >= 0) & (peaks + after <= len(signal))]
    return np.asarray(signal)[kept[:, None] + np.arange(-before, after)], kept


def small_class_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded split stratified by class that also works for classes of one or two examples.

    scikit-learn's stratified split (``stratified_split``) refuses classes of fewer than two
    examples per split. Here each class is shuffled with ``seed`` and dealt out in proportion:
    ``round(n * test_fraction)`` to test, but at least one; ``round(n * val_fraction)`` of the rest
    to validation, but at least one when two or more remain and ``val_fraction > 0``; the rest
    trains. A lone example thus lands in the test split, where metrics can see it.

    Args:
        labels: one class index per example.
        val_fraction: share of each class for validation.
        test_fraction: share of each class for the test split.
        seed: seed of the shuffling.

    Returns:
        Sorted ``(train, val, test)`` index arrays.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = min(len(members), max(1, round(len(members) * test_fraction)))
        rest = len(members) - n_test
        n_val = min(rest, max(int(val_fraction > 0 and rest >= 2), round(len(members) * val_fraction)))
        parts[2].extend(members[:n_test])
        parts[1].extend(members[n_test : n_test + n_val])
        parts[0].extend(members[n_test + n_val :])
    return tuple(np.sort(np.asarray(part, dtype=np.int64)) for part in parts)  # type: ignore[return-value]


def _read_ecg() -> tuple[np.ndarray, np.ndarray, Path]:
    """The ECG samples, their 0/1 labels and the file they came from."""
    path = find_data(ECG_FILE)
    if path is None:
        searched = ", ".join(str(root / ECG_FILE) for root in data_roots())
        raise DataError(
            f"the ECG file {ECG_FILE} was not found (looked for {searched}). Set GLASSNET_DATA to a folder "
            "holding ecg/mitdb.csv (in this project: ../shared/data), or copy the file into the cache"
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # raw cells, so errors quote them
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read ECG file '{path}': {exc}") from exc
    missing = [c for c in ("data", "label") if c not in frame.columns]
    if missing:
        raise DataError(f"ECG file '{path}' lacks column(s) {', '.join(missing)}; it needs columns data,label")
    signal = pd.to_numeric(frame["data"], errors="coerce").to_numpy(dtype=np.float64)
    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(signal) | ~np.isin(labels, (0, 1)))
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"ECG file '{path}' line {row + 2}: data={frame['data'][row]!r}, label={frame['label'][row]!r}; "
            "data must be a finite number and label 0 or 1"
        )
    return signal, labels.astype(np.int64), path
