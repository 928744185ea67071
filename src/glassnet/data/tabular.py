"""Load a user's CSV table as a ``DataBundle``: one row per example, one target column.

Numeric columns keep their natural units (standardisation is the model's first layer, fitted on
the training split by ``bundle_from_splits``); missing numbers are imputed with the training
median plus a ``<col>_missing`` indicator; categorical columns are one-hot encoded with the
categories seen in the training split. The split comes first and every encoder is fitted on the
training rows only, so nothing about the validation or test rows leaks into the inputs.

The fitted encoders (the *recipe*) are stored, JSON-ready, in ``spec.extra["tabular"]``, so that
``encode_frame`` and ``read_csv_inputs`` encode new raw rows at prediction time exactly as in
training.

Missing values are empty cells and pandas' usual markers (``NA``, ``N/A``, ``NaN``, ``null``,
``None``, ...) plus ``?``, the marker of many UCI tables.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from glassnet.data.bundle import DataBundle, bundle_from_splits
from glassnet.data.encoding import not_utf8
from glassnet.data.registry import register_format
from glassnet.data.spec import DataSpec
from glassnet.data.splits import stratified_split
from glassnet.errors import ConfigError, DataError, closest

SUFFIXES = (".csv", ".tsv", ".txt")
TASKS = ("auto", "classify", "regress")
TARGET_NAMES = ("target", "label", "class", "y")  # looked for, case-insensitively, when no target is given
MISSING = "<missing>"  # the category of missing categorical values
NA_VALUES = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"}
    | {"NA", "NULL", "NaN", "None", "n/a", "nan", "null", "?"}
)
MAX_AUTO_CLASSES = 20  # an integer target with at most this many values is a class label
NUMERIC_SHARE = 0.8  # a column whose values are at least this share numbers is meant to be numeric
# pandas reads these as booleans wherever a column holds nothing else; one spelling keeps categories
# the same whether a column was read as booleans or as text
BOOLEAN_SPELLINGS = {"true": "True", "TRUE": "True", "false": "False", "FALSE": "False"}
SHOW = 5  # rows quoted in one error message
RECIPE_VERSION = 1


@dataclass
class Table:
    """The rows of a CSV file.

    Attributes:
        frame: one column per header name, typed by pandas (numbers, booleans or text), NaN where a
            value is missing.
        lines: the file line on which each row of ``frame`` starts (the header is line 1).
        source: the file, as named in error messages.
        empty_rows: rows with no value at all (blank lines), left out of ``frame``.
    """

    frame: pd.DataFrame
    lines: np.ndarray
    source: str
    empty_rows: int = 0

    def where(self, position: int) -> str:
        """``row R (line L)`` of the 0-based data row ``position``."""
        return where(position, self.lines)


@dataclass
class Columns:
    """Feature columns parsed by kind: numbers (NaN if missing) and categories (``MISSING`` if missing)."""

    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]


def looks_tabular(path: Path) -> bool:
    """Whether ``path`` is a regular file named ``*.csv``, ``*.tsv`` or ``*.txt`` (optionally ``.gz``)."""
    return path.is_file() and _base_suffix(path) in SUFFIXES


@register_format(
    "tabular",
    detect=looks_tabular,
    description="CSV table: one row per example, a target column",
    example="glassnet train --data patients.csv --model mlp data.target=outcome",
    fallback=True,  # claims any CSV: tried after the formats that recognise their header
)
def load_tabular(
    path: str | Path,
    target: str | None = None,
    task: str = "auto",
    categorical: Sequence[str] | str | None = None,
    drop: Sequence[str] | str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    max_categories: int = 50,
) -> DataBundle:
    """Load a CSV table with a header row as a tabular ``DataBundle``.

    Args:
        path: the file (``.csv``, ``.tsv``, ``.txt``, optionally gzipped); ``.csv`` is
            comma-separated, the delimiter of the others is sniffed (tab, comma, ``;`` or ``|``).
        target: the target column; default: a column named ``target``, ``label``, ``class`` or
            ``y`` (any case), else the last column.
        task: ``auto`` (classify a text, boolean or integer target with at most 20 values,
            regress otherwise), ``classify`` or ``regress``.
        categorical: columns to one-hot encode even though they hold numbers (e.g. codes).
            Columns holding text are categorical anyway.
        drop: columns to leave out (ids, free text, leaks of the target).
        val_fraction: share of rows for validation.
        test_fraction: share of rows for the test split.
        split_seed: seed of the split (stratified by class, or by target quantile for regression).
        max_categories: most categories one column may have in the training rows.

    Returns:
        The bundle; ``spec.extra["tabular"]`` holds the recipe that encodes new rows, and
        ``info`` says which target and task were chosen and why.

    Raises:
        DataError: the file is unreadable, malformed or unsuitable; the message names the file,
            the row (and line) or the column, and how to fix it.
        ConfigError: an option has a bad value.
    """
    path = Path(path)
    _check_options(task, max_categories)
    categorical, drop = _names("categorical", categorical), _names("drop", drop)
    table = read_table(path, text_columns=categorical)
    target, target_reason = _choose_target(table, target)
    features = _feature_columns(table, target, categorical, drop)
    task, y, class_names, task_reason = _target_values(table, target, task)
    kinds = {name: _infer_kind(table, name, name in categorical) for name in features}
    columns = parse_columns(table.frame, kinds, table.source, table.lines)
    splits = _split(table, target, y, task, class_names, val_fraction, test_fraction, split_seed)
    recipe = _fit_recipe(table, target, kinds, columns, splits[0], max_categories)
    x = encode_columns(columns, recipe["columns"], len(table.frame))
    info = _describe(path, table, target, target_reason, task_reason, kinds, drop)
    info.update(val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed)
    train, val, test = ((x[s], y[s]) for s in splits)
    return bundle_from_splits(
        train,
        val,
        test,
        name=_stem(path),
        modality="tabular",
        task=task,
        class_names=class_names,
        feature_names=tuple(feature_names(recipe["columns"])),
        extra={"tabular": recipe},
        info=info,
    )


def _describe(
    path: Path, table: Table, target: str, target_reason: str, task_reason: str, kinds: dict[str, str], drop: list[str]
) -> dict[str, Any]:
    """``DataBundle.info``: where the table came from and which choices the loader made."""
    return {
        "source": str(path),
        "format": "tabular",
        "description": f"CSV table '{path.name}': {len(table.frame)} rows, target '{target}' ({task_reason})",
        "target": target,
        "target_chosen": target_reason,
        "task_chosen": task_reason,
        "rows": len(table.frame),
        "empty_rows_skipped": table.empty_rows,
        "numeric_columns": [n for n, k in kinds.items() if k == "numeric"],
        "categorical_columns": [n for n, k in kinds.items() if k == "categorical"],
        "dropped_columns": list(drop),
    }


def encode_frame(
    frame: pd.DataFrame, spec: DataSpec, source: str, lines: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Encode raw rows (columns by name, as in the training CSV) into the model's input matrix.

    The target column and any other extra column are ignored; missing values, unseen categories
    (an all-zero group) and numbers are handled exactly as in training.

    Args:
        frame: one example per row, raw values (text or numbers), columns named as in training.
        spec: the spec of a model trained by ``load_tabular`` (holds the recipe).
        source: what the rows came from, for error messages (e.g. a file name).
        lines: file line of each row, for error messages (default: row + 1, after a header line).

    Returns:
        A float32 array of shape ``(len(frame), *spec.input_shape)``.

    Raises:
        DataError: the spec holds no tabular recipe, a feature column is missing, or a numeric
            column holds text or an infinity (the message names the row and column).
    """
    recipe = _recipe(spec, source)
    entries = recipe["columns"]
    absent = [e["name"] for e in entries if e["name"] not in frame.columns]
    if absent:
        expected = ", ".join(e["name"] for e in entries)
        raise DataError(
            f"'{source}' has no column {', '.join(map(repr, absent))}; the model needs the columns {expected} "
            f"(the target column {recipe['target']!r} is optional)"
        )
    lines = np.arange(2, len(frame) + 2) if lines is None else np.asarray(lines)
    kinds = {e["name"]: e["kind"] for e in entries}
    columns = parse_columns(frame, kinds, source, lines)
    return encode_columns(columns, entries, len(frame))


def read_csv_inputs(path: str | Path, spec: DataSpec) -> tuple[np.ndarray, list[str]]:
    """Read a CSV of raw rows for prediction with a model trained on a CSV table.

    Args:
        path: a CSV with a header row naming the columns (the target column may be absent).
        spec: the model's spec, holding the recipe in ``extra["tabular"]``.

    Returns:
        The encoded inputs, shape ``(N, *spec.input_shape)``, and one label ``file:line`` per row.

    Raises:
        DataError: the file is missing, unreadable or malformed, has no data rows, lacks a feature
            column, or holds a bad value (the message names the file, row and column).
    """
    path = Path(path)
    recipe = _recipe(spec, str(path))
    if not path.is_file():
        raise DataError(f"input file '{path}' not found")
    table = read_table(path, text_columns=[e["name"] for e in recipe["columns"] if e["kind"] == "categorical"])
    x = encode_frame(table.frame, spec, table.source, lines=table.lines)
    return x, [f"{path}:{line}" for line in table.lines]


def read_table(path: Path, text_columns: Collection[str] = ()) -> Table:
    """Read a delimited text file with a header row into a ``Table``.

    pandas infers each column's type (numbers or text); ``text_columns`` are kept as text (e.g.
    category codes such as ``01``). Missing-value markers become NaN.

    Raises:
        DataError: the file is empty, has no data rows, rows of different lengths, an unclosed
            quote, a bad header or bytes that are not UTF-8.
    """
    source = str(path)
    delimiter = _delimiter(path)
    header, starts = _scan(path, delimiter, source)
    names = _header_names(header, source)
    body = _parse(path, delimiter, source, names, [c for c in text_columns if c in names])
    keep = body.notna().any(axis=1).to_numpy()
    # _scan and pandas see the same records; if ever not, fall back to counting lines
    lines = starts if len(starts) == len(body) else np.arange(2, len(body) + 2)
    if not keep.any():
        raise DataError(f"'{source}' has a header (line 1) but no data rows; add one example per line below the header")
    frame = body[keep].reset_index(drop=True)
    return Table(frame, lines[keep], source, empty_rows=int((~keep).sum()))


def parse_columns(frame: pd.DataFrame, kinds: dict[str, str], source: str, lines: np.ndarray) -> Columns:
    """Parse each named column as ``numeric`` or ``categorical`` (see ``Columns``).

    Raises:
        DataError: a numeric column holds text or an infinity; the message names row and column.
    """
    columns = Columns({}, {})
    for name, kind in kinds.items():
        if kind == "numeric":
            columns.numeric[name] = _numbers(frame[name], name, source, lines)
        else:
            columns.categorical[name] = _as_text(frame[name]).fillna(MISSING).to_numpy(dtype=object)
    return columns


def encode_columns(columns: Columns, entries: list[dict[str, Any]], rows: int) -> np.ndarray:
    """Apply a fitted recipe to parsed columns: imputed numbers, missing indicators and one-hot groups."""
    blocks = [np.zeros((rows, 0), dtype=np.float32)]
    for entry in entries:
        if entry["kind"] == "numeric":
            values = columns.numeric[entry["name"]]
            missing = np.isnan(values)
            blocks.append(np.where(missing, entry["median"], values)[:, None])
            if entry["missing_indicator"]:
                blocks.append(missing[:, None])
        else:
            # categories unseen in the training rows get code -1 and hence an all-zero group
            codes = pd.Index(entry["categories"], dtype=object).get_indexer(columns.categorical[entry["name"]])
            onehot = np.zeros((rows, len(entry["categories"])), dtype=np.float32)
            seen = codes >= 0
            onehot[np.flatnonzero(seen), codes[seen]] = 1.0
            blocks.append(onehot)
    return np.concatenate([b.astype(np.float32) for b in blocks], axis=1)


def feature_names(entries: list[dict[str, Any]]) -> list[str]:
    """Names of the encoded inputs: ``age``, ``age_missing``, ``colour=red`` ..."""
    names = []
    for entry in entries:
        if entry["kind"] == "numeric":
            names.append(entry["name"])
            if entry["missing_indicator"]:
                names.append(f"{entry['name']}_missing")
        else:
            names.extend(f"{entry['name']}={c}" for c in entry["categories"])
    return names


def where(position: int, lines: np.ndarray) -> str:
    """``row R (line L)`` for a 0-based data row: R counts data rows from 1, L counts file lines."""
    return f"row {position + 1} (line {int(lines[position])})"


# reading -----------------------------------------------------------------------------------------


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _stem(path: Path) -> str:
    name = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
    return Path(name).stem


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _delimiter(path: Path) -> str:
    """``,`` for ``.csv``; otherwise sniffed from the first lines (tab for ``.tsv`` if unsure)."""
    suffix = _base_suffix(path)
    if suffix == ".csv":
        return ","
    fallback = "\t" if suffix == ".tsv" else ","
    try:
        with _open_text(path) as handle:
            sample = "".join(line for _, line in zip(range(50), handle))
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        return fallback  # the scan that follows reports the problem with the file's name
    first = sample.split("\n", 1)[0]
    if suffix == ".tsv" and "\t" in first:
        return "\t"
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return fallback


def _scan(path: Path, delimiter: str, source: str) -> tuple[list[str], np.ndarray]:
    """Check that every row has as many fields as the header.

    Returns:
        The header's fields and the file line on which each data row starts.

    pandas pads short rows silently and counts lines by record, so this pass with the ``csv``
    module finds short rows too and gives true file lines (quoted values may span lines).
    """
    starts: list[int] = []
    header: list[str] = []
    width, previous = None, 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for row in reader:
                line, previous = previous + 1, reader.line_num
                blank = not any(cell.strip() for cell in row)
                if width is None:
                    if blank:
                        raise DataError(_empty_message(source, line))
                    header, width = row, len(row)
                    continue
                starts.append(line)
                if len(row) != width and not blank:
                    message = _ragged_message(source, line, len(row), width, delimiter)
                    if any("\n" in cell for cell in row):  # a value ran on over lines: a quote left open
                        message += f'; a quote (") opened on line {line} may never be closed'
                    raise DataError(message)
    except UnicodeDecodeError as exc:  # the stream decodes ahead of the rows read: find the bad byte's line
        raise not_utf8(path, source) from exc
    except (OSError, EOFError, zlib.error, csv.Error) as exc:
        raise DataError(f"cannot read '{source}' near line {previous + 1}: {exc}") from exc
    if width is None:
        raise DataError(_empty_message(source, 1))
    return header, np.asarray(starts, dtype=np.int64)


def _parse(path: Path, delimiter: str, source: str, names: list[str], text_columns: list[str]) -> pd.DataFrame:
    """Read the rows with pandas; every pandas error becomes a ``DataError`` naming the file."""
    try:
        return pd.read_csv(
            path,
            sep=delimiter,
            header=0,
            names=names,  # checked by _header_names (pandas would rename a repeated name silently)
            dtype=dict.fromkeys(text_columns, str),
            na_values=sorted(NA_VALUES),
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=False,  # keeps rows aligned with the lines found by _scan
            low_memory=False,  # one type per column, not one per chunk
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(_empty_message(source, 1)) from exc
    except pd.errors.ParserError as exc:
        raise _parser_error(source, exc, delimiter) from exc
    except (UnicodeDecodeError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"cannot read '{source}' as CSV: {exc}") from exc


def _parser_error(source: str, exc: Exception, delimiter: str) -> DataError:
    """Translate a pandas ``ParserError`` into a message that names the file and line."""
    text = str(exc)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        width, line, seen = (int(g) for g in fields.groups())
        return DataError(_ragged_message(source, line, seen, width, delimiter))
    quote = re.search(r"EOF inside string starting at row (\d+)", text)
    if quote:
        return DataError(
            f"'{source}' line {int(quote.group(1)) + 1} opens a quote (\") that is never closed; "
            'close it, or double quotes inside quoted values ("")'
        )
    return DataError(f"cannot parse '{source}' as CSV: {text}")


def _empty_message(source: str, line: int) -> str:
    where_ = "is empty" if line == 1 else f"has a blank line {line} before its header"
    return (
        f"'{source}' {where_}; a table needs a header line naming the columns, then one example per line, "
        "e.g. 'age,colour,outcome' then '41,red,yes'"
    )


def _ragged_message(source: str, line: int, seen: int, width: int, delimiter: str) -> str:
    return (
        f"'{source}' line {line} has {seen} fields; the header has {width}. Check that line for a missing or "
        f"extra delimiter ({delimiter!r}), and quote values that contain it"
    )


def _header_names(header: list[str], source: str) -> list[str]:
    names = [str(n).strip() for n in header]
    for i, name in enumerate(names):
        if not name:
            raise DataError(f"'{source}' column {i + 1} has no name in the header (line 1); name every column")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"'{source}' has two columns named {name!r} in its header (line 1); rename one")
        seen.add(name)
    if len(names) == 1 and any(d in names[0] for d in ";\t|,"):
        raise DataError(
            f"'{source}' has a single column {names[0]!r}: is it delimited by something else? "
            "A .csv file must be comma-separated; save it as .tsv or .txt to have the delimiter detected"
        )
    return names


def _raw(series: pd.Series, position: int) -> str:
    return str(series.iloc[position]).strip()


def _as_text(series: pd.Series) -> pd.Series:
    """Any column (text or numbers) as stripped strings with missing values as NA."""
    text = series.astype("string").str.strip().replace(BOOLEAN_SPELLINGS)
    return text.mask(text.isin(NA_VALUES))


def _is_number_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _parse_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Values as floats (NaN where missing) and the positions of values that are not numbers."""
    if _is_number_column(series):
        return series.to_numpy(dtype=float, na_value=np.nan), np.zeros(0, dtype=np.int64)
    text = _as_text(series)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values, np.flatnonzero(text.notna().to_numpy() & np.isnan(values))


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _numbers(series: pd.Series, name: str, source: str, lines: np.ndarray) -> np.ndarray:
    """Parse a numeric column (NaN where missing); text or an infinity is a ``DataError``."""
    values, bad = _parse_numbers(series)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"'{source}' column {name!r} {where(i, lines)} holds {_raw(series, i)!r}, which is not a number"
            f"{f' ({bad.size} such values)' if bad.size > 1 else ''}; fix the value, or list the column in "
            f"categorical=[{name!r}] (data.categorical=[{name}]) if it holds categories"
        )
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        i = int(infinite[0])
        raise DataError(
            f"'{source}' column {name!r} {where(i, lines)} holds {_raw(series, i)!r} (infinite); "
            "replace it with a finite number or leave the cell empty to mark it missing"
        )
    huge = np.flatnonzero(np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
    if huge.size:
        i = int(huge[0])
        raise DataError(
            f"'{source}' column {name!r} {where(i, lines)} holds {_raw(series, i)!r}, beyond the float32 range "
            f"(+-{FLOAT32_MAX:.3g}) that models compute in; rescale the column (e.g. to other units or its logarithm)"
        )
    return values


# options, target and feature columns ---------------------------------------------------------------


def _check_options(task: str, max_categories: int) -> None:
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}. Received: task={task!r}")
    if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 1:
        raise ConfigError(f"max_categories must be an integer >= 1. Received: max_categories={max_categories!r}")


def _names(option: str, value: Sequence[str] | str | None) -> list[str]:
    """A list of column names from None, one name, or a list (as ``data.drop=[id,name]`` gives)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{option} must be a column name or a list of column names. Received: {option}={value!r}")


def _unknown_column(table: Table, option: str, name: str) -> DataError:
    columns = list(table.frame.columns)
    guess = closest(name, columns) or closest(name.lower(), [c.lower() for c in columns])
    hint = f" Did you mean {guess!r}?" if guess else ""
    shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
    return DataError(f"'{table.source}' has no column {name!r} ({option}).{hint} Its columns: {shown}")


def _choose_target(table: Table, target: str | None) -> tuple[str, str]:
    """The target column and why it was chosen."""
    columns = list(table.frame.columns)
    if target is not None:
        if target not in columns:
            raise _unknown_column(table, "target", target)
        return target, "given"
    for wanted in TARGET_NAMES:
        for name in columns:
            if name.lower() == wanted:
                return name, f"the column named {name!r}"
    return columns[-1], "the last column"


def _feature_columns(table: Table, target: str, categorical: list[str], drop: list[str]) -> list[str]:
    for option, names in (("categorical", categorical), ("drop", drop)):
        for name in names:
            if name not in table.frame.columns:
                raise _unknown_column(table, option, name)
            if name == target:
                raise ConfigError(f"{option} lists {name!r}, the target column; list only feature columns")
    features = [c for c in table.frame.columns if c != target and c not in drop]
    if not features:
        raise DataError(
            f"'{table.source}' has no feature column besides the target {target!r}"
            f"{' and the dropped ones' if drop else ''}; a table needs at least one input column"
        )
    return features


def _infer_kind(table: Table, name: str, forced_categorical: bool) -> str:
    """``categorical`` for text columns (or when asked), ``numeric`` when the values are numbers.

    Raises:
        DataError: the column is empty, holds an infinity, or is mostly numbers with a stray
            value (a typo, not text).
    """
    if forced_categorical:
        return "categorical"
    series = table.frame[name]
    values, bad = _parse_numbers(series)
    present = int((~np.isnan(values)).sum()) + bad.size
    if present == 0:
        raise DataError(
            f"'{table.source}' column {name!r} is empty in every row; drop it with drop=[{name!r}] (data.drop=[{name}])"
        )
    if bad.size <= (1 - NUMERIC_SHARE) * present:
        _numbers(series, name, table.source, table.lines)  # raises, naming the stray value or infinity
        return "numeric"
    return "categorical"


def _target_values(table: Table, target: str, task: str) -> tuple[str, np.ndarray, tuple[str, ...], str]:
    """Resolve the task and encode the target: class indices (classification) or floats (regression).

    Returns:
        ``(task, y, class_names, reason)``.
    """
    series = table.frame[target]
    missing = np.flatnonzero(_as_text(series).isna().to_numpy())
    if missing.size:
        shown = ", ".join(table.where(int(i)) for i in missing[:SHOW])
        raise DataError(
            f"'{table.source}' target column {target!r} is empty in {missing.size} row(s): {shown}"
            f"{' ...' if missing.size > SHOW else ''}; fill in the target or remove those rows"
        )
    values, bad = _parse_numbers(series)
    numeric = bad.size == 0
    mostly_numbers = bad.size <= (1 - NUMERIC_SHARE) * len(values)
    if numeric or task == "regress" or (task == "auto" and mostly_numbers):
        _target_numbers(table, target, hint=not numeric)  # a stray text value or an infinity
    reason = f"task={task}"
    if task == "auto":
        task, reason = _auto_task(values, numeric)
    if task == "regress":
        return task, values.astype(np.float32), (), reason
    y, class_names = _classes(table, target, values if numeric else None)
    return task, y, class_names, reason


def _target_numbers(table: Table, target: str, hint: bool) -> None:
    """Raise the ``DataError`` of a target that should hold numbers but holds text or an infinity."""
    try:
        _numbers(table.frame[target], target, table.source, table.lines)
    except DataError as exc:
        if not hint:
            raise
        raise DataError(
            f"{exc}. A regression target needs numbers; if the column holds class names, set task=classify "
            "(data.task=classify)"
        ) from None


def _auto_task(values: np.ndarray, numeric: bool) -> tuple[str, str]:
    if not numeric:
        return "classify", "auto: the target holds text"
    distinct = np.unique(values)
    if np.all(distinct == np.round(distinct)) and len(distinct) <= MAX_AUTO_CLASSES:
        return "classify", f"auto: integer target with {len(distinct)} values"
    return "regress", "auto: numeric target"


def _classes(table: Table, target: str, values: np.ndarray | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and names (sorted distinct values: numerically for numbers, as text otherwise)."""
    if values is not None:
        classes, y = np.unique(values, return_inverse=True)
        names = tuple(str(int(c)) if float(c).is_integer() else str(c) for c in classes)
    else:
        classes, y = np.unique(_as_text(table.frame[target]).to_numpy(dtype=str), return_inverse=True)
        names = tuple(str(c) for c in classes)
    if len(names) < 2:
        raise DataError(
            f"'{table.source}' target column {target!r} has a single class ({names[0]!r}) in all {len(y)} rows; "
            "classification needs at least two classes: add examples of the others, or pick another column "
            "with target=NAME"
        )
    return y.astype(np.int64), names


def _split(
    table: Table,
    target: str,
    y: np.ndarray,
    task: str,
    class_names: tuple[str, ...],
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/val/test row indices; a class too small to stratify is a ``DataError``."""
    classify = task == "classify"
    try:
        return stratified_split(y, val_fraction, test_fraction, split_seed, classify)
    except ConfigError as exc:
        if not str(exc).startswith("cannot make"):
            raise  # bad fractions: the message already says what is allowed
        if not classify:
            raise DataError(
                f"'{table.source}' has only {len(y)} rows, too few to split into train/val/test with "
                f"val_fraction={val_fraction} and test_fraction={test_fraction}; add rows"
            ) from exc
        counts = np.bincount(y, minlength=len(class_names))
        rare = ", ".join(f"{class_names[k]!r} ({counts[k]} rows)" for k in np.argsort(counts)[:SHOW])
        raise DataError(
            f"'{table.source}' target column {target!r} cannot be split into train/val/test keeping each class "
            f"in every split ({len(class_names)} classes; smallest: {rare}); remove or merge the rare classes, "
            f"or choose another target with target=NAME"
        ) from exc


# the recipe ------------------------------------------------------------------------------------------


def _fit_recipe(
    table: Table, target: str, kinds: dict[str, str], columns: Columns, train: np.ndarray, max_categories: int
) -> dict[str, Any]:
    """Fit imputation and categories on the training rows only; return the JSON-ready recipe."""
    entries = [
        _numeric_entry(name, columns.numeric[name][train])
        if kind == "numeric"
        else _categorical_entry(table, name, columns.categorical[name][train], max_categories)
        for name, kind in kinds.items()
    ]
    return {"version": RECIPE_VERSION, "target": target, "missing": MISSING, "columns": entries}


def _numeric_entry(name: str, train_values: np.ndarray) -> dict[str, Any]:
    present = train_values[~np.isnan(train_values)]
    return {
        "name": name,
        "kind": "numeric",
        # a column missing in every training row is imputed with 0 (its indicator says so)
        "median": float(np.median(present)) if present.size else 0.0,
        "missing_indicator": bool(present.size < train_values.size),
    }


def _categorical_entry(table: Table, name: str, train_values: np.ndarray, max_categories: int) -> dict[str, Any]:
    categories = sorted({str(v) for v in train_values})
    if len(categories) > max_categories:
        raise DataError(
            f"'{table.source}' column {name!r} has {len(categories)} distinct values in the training rows, "
            f"more than max_categories={max_categories} (e.g. {', '.join(map(repr, categories[:3]))}). "
            f"Is it an id or free text? Drop it with drop=[{name!r}] (data.drop=[{name}]), or raise max_categories"
        )
    return {"name": name, "kind": "categorical", "categories": categories}


def _recipe(spec: DataSpec, source: str) -> dict[str, Any]:
    recipe = spec.extra.get("tabular") if spec.extra else None
    if not isinstance(recipe, dict) or "columns" not in recipe:
        raise DataError(
            f"cannot encode '{source}' as table rows: this model was not trained on a CSV table "
            f"(it takes {spec.modality} inputs of shape {spec.input_shape}); give .npy inputs instead"
        )
    return recipe
