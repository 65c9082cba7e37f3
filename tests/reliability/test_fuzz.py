"""Fuzzed input (issue 11, point 6): hypothesis-generated sweep specs and train configs
through `salsweep sweep validate`, `sweep launch --n-trials 1` and `salsweep train`.

Cases: a valid spec (or train config) with up to four mutations (a wrong type, a value
out of range, an unknown key, a key deleted, a searched setting added), dumped in block or
flow style, then sometimes damaged as text (a tab, a truncation, a duplicated line, a
stray character, a BOM, CRLF, a second document, a corrupt byte, another encoding); and
YAML oddities on their own: alias bombs (billion laughs), nesting from 30 to 5000 levels,
Python and unknown tags, merge keys, integers of thousands of digits, .nan and .inf,
impossible dates, NUL and control characters, empty files, non-mapping documents and
binary garbage.

What every case must give: no traceback and no "unexpected <Error>" (the CLI's words for a
bug), exit 0 only for an accepted file, else exit 1 (2 for click's usage errors) with one
line or "FILE: N problem(s)" and exactly N problem lines, none of them huge (an alias bomb
is never expanded into a message); nothing created for a rejected file: no file in the
working folder, no data dir (so no Optuna storage), no MLflow experiment. An accepted spec
is printed resolved, and that output loads back to the same spec.

`sweep validate` and rejected train configs run in-process (click's CliRunner) for the
number of cases; `sweep launch --n-trials 1` and `train` also run as real processes on a
smaller set (fixture ``salsweep_process``: a crash of the interpreter, a missed exit code
or a line printed outside click shows there only), launch against the session's real MLflow
server. A valid train config is only loaded, never trained; one valid spec full of YAML
oddities is launched for real, in-process.

Every test prints the cases it ran (``pytest -s``); with ``SALSWEEP_FUZZ_COUNTS=FILE`` it
also appends them to FILE as JSON lines. Runs are derandomized (the same cases every run,
no example database); ``SALSWEEP_FUZZ_SCALE=10`` runs ten times as many generated cases,
new random ones each run.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import types
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cli import cli
from sweeps import SpecError, load_spec, parse_spec, spec_to_yaml
from sweeps.confirmation import ConfirmSpec
from sweeps.settings import Budget, ObjectiveSpec, PrunerSpec, SamplerSpec
from tests.process_helpers import SalsweepProcess
from trainer import ConfigError, TrainConfig, load_train_config

SCALE = max(1, int(os.environ.get("SALSWEEP_FUZZ_SCALE", "1")))
# No problem line of a rejected file is longer than this: a bomb or a long value is never
# expanded into the message.
MAX_LINE = 2000
MAX_PROBLEMS = 64

# ---------------------------------------------------------------------------- valid bases

TINY_BASE: dict[str, Any] = {
    "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 2, "num_test": 2},
    "model": {"base_channels": 4, "num_stages": 2},
    "loss": {"num_scales": 2},
    "epochs": 1,
    "steps_per_epoch": 1,
    "batch_size": 2,
    "device": "cpu",
    "previews": False,
}
TINY_SPEC: dict[str, Any] = {
    "name": "fuzz",
    "base": TINY_BASE,
    "search": {
        "loss.lambda_sg": {"low": 0.1, "high": 1.0, "log": True},
        "loss.use_inv_depth": "bool",
    },
    "budget": {"n_trials": 2},
    "sampler": {"type": "random", "seed": 0},
    "pruner": {"type": "none"},
}

# ---------------------------------------------------------------------------- strategies

SPECIAL_STRINGS = [
    "",
    " ",
    "bool",
    "none",
    "null",
    "~",
    "grid",
    "tpe",
    "median",
    "hyperband",
    "val/abs_rel",
    "test/abs_rel",
    "val/a1",
    "sparse-ssi",
    "ssi",
    "scale-adaptive",
    "1e-9",
    "0x10",
    "yes",
    "../../evil",
    "a\0b",
    "\t",
    "é",
    "💥",
    "x" * 300,
]
SPECIAL_INTS = [-1, 0, 1, 2, 3, 15, 16, 17, 64, 4096, 4097, 2**31, 2**32, 2**63, 2**64, 10**40]
SPECIAL_FLOATS = [0.0, -0.0, 1e-300, 5e-324, 0.5, 1.0, 100.0, 1e308, math.inf, -math.inf, math.nan]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.sampled_from(SPECIAL_INTS),
    st.integers(),
    st.floats(-1e3, 1e3),
    st.sampled_from(SPECIAL_FLOATS),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_STRINGS),
    st.dates(),
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(-3, 3), inner, max_size=4)
    ),
    max_leaves=8,
)


def _plausible(annotation: Any) -> st.SearchStrategy[Any]:
    """Values near what a field of this type takes (often valid, often just not)."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return st.booleans() | scalars
    if annotation is int:
        return st.integers(-3, 300) | st.sampled_from(SPECIAL_INTS)
    if annotation is float:
        return st.floats(-1.0, 200.0) | st.sampled_from(SPECIAL_FLOATS) | st.integers(0, 5)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(annotation)) | st.text(max_size=8)
    if annotation is Path:
        paths = ["data", "/nonexistent", "a\0b", "../x", "", "p" * 300]
        return st.sampled_from(paths) | st.text(max_size=8)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_plausible(a) for a in typing.get_args(annotation)))
    if annotation is type(None):
        return st.none()
    if annotation is str:
        return st.sampled_from(SPECIAL_STRINGS) | st.text(max_size=12)
    return anything


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> annotation of every leaf setting of ``model``."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.update(_leaf_fields(annotation, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = annotation
    return out


TRAIN_FIELDS = _leaf_fields(TrainConfig)
SECTIONS: dict[str, type[BaseModel]] = {
    "budget": Budget,
    "objective": ObjectiveSpec,
    "sampler": SamplerSpec,
    "pruner": PrunerSpec,
    "confirm": ConfirmSpec,
}
# Spec key path (a tuple) -> annotation, for every known key of a spec.
SPEC_FIELDS: dict[tuple[str, ...], Any] = {
    ("name",): str,
    ("baseline",): bool,
    **{("base", *p.split(".")): a for p, a in TRAIN_FIELDS.items()},
    **{(s, k): f.annotation for s, m in SECTIONS.items() for k, f in m.model_fields.items()},
}
JUNK_KEYS = st.sampled_from(
    ["", ".", "loss.", "loss", "loss.nope", "data.height.x", "a\tb", "lr ", "LR", "seeds"]
) | st.text(max_size=8)


# Settings other checks depend on (pruner epochs, image size vs scales and stages, grid).
KEY_SETTINGS = ["epochs", "loss.num_scales", "data.height", "model.num_stages", "lr", "seed"]


@st.composite
def search_params(draw: st.DrawFn) -> tuple[str, Any]:
    """A searched setting: a real or junk dotted path with a value, range, choices ..."""
    path = draw(st.sampled_from(KEY_SETTINGS) | st.sampled_from(sorted(TRAIN_FIELDS)) | JUNK_KEYS)
    value = _plausible(TRAIN_FIELDS.get(path, Any))
    number = value | st.sampled_from(SPECIAL_FLOATS) | st.integers(-3, 300)
    small = st.integers(-2, 12) | st.sampled_from([0.0, 0.5, 1.0, 4.0])
    param = draw(
        st.one_of(
            value,
            st.fixed_dictionaries(
                {"low": number, "high": number},
                optional={"log": st.booleans() | scalars, "step": number, "choices": value},
            ),
            # small ends in either order, often a plain int range (empty, one value ...)
            st.fixed_dictionaries(
                {"low": small, "high": small}, optional={"step": small, "log": st.booleans()}
            ),
            st.fixed_dictionaries({"choices": st.lists(value, max_size=4)}),
            st.lists(value, max_size=4),
            st.just("bool"),
            anything,
        )
    )
    return path, param


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _delete(data: dict[str, Any], path: tuple[Any, ...]) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


@st.composite
def mutated(
    draw: st.DrawFn, base: dict[str, Any], fields: dict[tuple[str, ...], Any], spec: bool
) -> dict[str, Any]:
    """``base`` with 0 to 4 mutations: set a known key (plausible or any value), add an
    unknown key, delete a key, add a searched setting (spec only)."""
    data = copy.deepcopy(base)
    paths = sorted(fields)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["set", "set", "any", "unknown", "delete", "search"]))
        if kind in ("set", "any"):
            path = draw(st.sampled_from(paths))
            value = _plausible(fields[path]) if kind == "set" else anything
            _set(data, path, draw(value))
        elif kind == "unknown":
            parent = draw(st.sampled_from([(), *sorted({p[:-1] for p in paths if len(p) > 1})]))
            _set(data, (*parent, draw(JUNK_KEYS | st.integers(-2, 2) | st.none())), draw(scalars))
        elif kind == "delete":
            _delete(data, draw(st.sampled_from(paths + [(k,) for k in base])))
        elif spec:
            key, param = draw(search_params())
            _set(data, ("search", key), param)
    return data


def _dump(draw: st.DrawFn, data: Any) -> str:
    try:
        return yaml.safe_dump(
            data,
            default_flow_style=draw(st.sampled_from([False, True, None])),
            allow_unicode=draw(st.booleans()),
            sort_keys=False,
            width=draw(st.sampled_from([80, 10**6])),
        )
    except yaml.YAMLError:  # e.g. a key PyYAML cannot represent: the data as flow text
        return repr(data)


@st.composite
def damaged(draw: st.DrawFn, text: str) -> bytes:
    """The YAML text as bytes, usually intact, sometimes damaged."""
    how = draw(
        st.sampled_from(
            ["none"] * 6
            + ["tab", "truncate", "dup-line", "char", "bom", "crlf", "second-doc", "byte"]
            + ["latin-1", "utf-16", "indent"]
        )
    )
    lines = text.splitlines(keepends=True) or [""]
    at = draw(st.integers(0, max(len(text) - 1, 0)))
    if how == "tab":
        text = text[:at] + "\t" + text[at:]
    elif how == "truncate":
        text = text[:at]
    elif how == "dup-line":
        i = draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[: i + 1] + lines[i:])
    elif how == "char":
        char = draw(st.sampled_from(list(":{}[],&*!|>'\"%@`#-?\0\x07\x1b\x85\u2028\ufeff")))
        text = text[:at] + char + text[at:]
    elif how == "bom":
        text = "\ufeff" + text
    elif how == "crlf":
        text = text.replace("\n", "\r\n")
    elif how == "second-doc":
        text = text + "---\n" + text
    elif how == "indent":
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = " " * draw(st.integers(1, 5)) + lines[i]
        text = "".join(lines)
    if how == "latin-1":
        return (text + "# é\n").encode("latin-1", errors="replace")
    if how == "utf-16":
        return text.encode("utf-16")
    raw = text.encode("utf-8", errors="surrogatepass")
    if how == "byte" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        raw = (
            raw[:i] + bytes([draw(st.sampled_from([0x80, 0xC3, 0xFF, 0x00, 0xFE]))]) + raw[i + 1 :]
        )
    return raw


def _bomb(depth: int, width: int, container: str) -> str:
    """Anchors ``a0 .. a{depth}``, each ``width`` aliases of the one before: expanded, the
    last one would hold width**depth leaves (a billion laughs at 9 x 9)."""
    lines = []
    for level in range(depth + 1):
        items = ["lol"] * width if level == 0 else [f"*a{level - 1}"] * width
        if container == "map":
            body = ", ".join(f"k{i}: {item}" for i, item in enumerate(items))
            lines.append(f"  x{level}: &a{level} {{{body}}}")
        else:
            lines.append(f"  x{level}: &a{level} [{', '.join(items)}]")
    return "\n".join(lines)


@st.composite
def bombs(draw: st.DrawFn) -> bytes:
    depth, width = draw(st.integers(2, 12)), draw(st.integers(2, 10))
    container = draw(st.sampled_from(["list", "map"]))
    last = f"*a{depth}"
    where = draw(
        st.sampled_from(
            [
                f"name: {last}",
                f"base: {last}",
                f"base: {{loss: {last}}}",
                f"budget: {last}",
                f"sampler: {last}",
                f"confirm: {last}",
                f"baseline: {last}",
                f"bomb: {last}",
                f"epochs: {last}",
                f"loss: {{num_scales: {last}}}",
            ]
        )
    )
    search_value = draw(st.sampled_from([last, f"{{choices: {last}}}", f"{{low: {last}}}", "1"]))
    text = f"search:\n{_bomb(depth, width, container)}\n  lr: {search_value}\n{where}\n"
    return text.encode()


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([30, 63, 64, 65, 100, 1000, 5000]) | st.integers(1, 300))
    style = draw(st.sampled_from(["list", "map", "block"]))
    if style == "list":
        nest = "[" * depth + "1" + "]" * depth
    elif style == "map":
        nest = "{a: " * depth + "1" + "}" * depth
    else:
        nest = "".join(f"\n{'  ' * (i + 2)}a:" for i in range(min(depth, 600))) + " 1"
    where = draw(st.sampled_from(["search:\n  lr: {}", "base: {}", "{}", "name: x\nsearch: {}"]))
    return where.replace("{}", nest, 1).encode() + b"\n"


ODD_VALUES = [
    "!!python/object/apply:os.system ['touch PWNED']",
    "!!python/object/new:os.system ['touch PWNED']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!python/object:pathlib.Path {}",
    "!custom 1",
    "!!str 1",
    "!!int '12'",
    "!!int 'x'",
    "!!float 'x'",
    "!!bool maybe",
    "!!binary '%%%'",
    "!!binary aGVsbG8=",
    "!!timestamp 2020-13-01",
    "2020-13-45",
    "2020-02-30",
    "0000-01-01",
    "2020-01-01 25:61:00",
    "!!null x",
    "!!omap [a: 1, a: 2]",
    "!!pairs [a: 1]",
    "!!set {a, b}",
    "!!map []",
    "!!seq {}",
    "*undefined",
    "&anchor",
    "<<: {a: 1}",
    "{<<: [1, 2]}",
    "{? [1, 2] : 3}",
    "{? {a: 1} : 3}",
    ".nan",
    ".inf",
    "-.inf",
    "1.0e+400",
    "-1.0e+400",
    "1e400",
    "0x" + "f" * 5000,
    "9" * 5000,
    "9" * 4000,
    "1" + "0" * 400,
    "190:20:30:" * 300 + "1",
    "0b" + "1" * 20000,
    "'" + "x" * 100_000 + "'",
    '"\\0"',
    '"\\ud800"',
    '"a\\x00b"',
    "|\n  block\n  text",
    ">-\n  folded",
    "'unterminated",
    "[unclosed",
    "{a: 1",
    "@reserved",
    "`reserved",
    "%YAML 1.1",
    "- a\n- b",
]
TOP_LEVEL = [
    "",
    "\n\n",
    "# only a comment\n",
    "---\n",
    "---\n...\n",
    "--- 1\n--- 2\n",
    "null",
    "~",
    "42",
    "3.5",
    "true",
    "just text",
    "[1, 2, 3]",
    "- name: x\n",
    "!!set {a, b}",
    "!!binary aGVsbG8=",
    "!!omap [a: 1]",
    "'a string'",
    "%YAML 1.2\n---\nname: x\n",
    "%TAG ! tag:example.com,2000:\n--- !foo 1\n",
    "name: x\nname: y\n",
    "name: x\nsearch:\n  lr: 0.1\n  lr: 0.2\n",
    "name:\tx\n",
    "\tname: x\n",
    "name: x\n\tsearch: {}\n",
    "name: a\x00b\n",
    "name: a\x07b\n",
    "a: &x 1\nb: *y\n",
    "<<: {name: x}\nsearch: {lr: [0.1, 0.2]}\n",
]


@st.composite
def odd_values(draw: st.DrawFn, key_path: list[str]) -> bytes:
    """One odd YAML value at a key path of a small document, or an odd whole document."""
    if draw(st.booleans()):
        return draw(st.sampled_from(TOP_LEVEL)).encode("utf-8", errors="surrogatepass")
    value = draw(st.sampled_from(ODD_VALUES))
    key = draw(st.sampled_from(key_path))
    head, _, leaf = key.rpartition(" ")
    indent = "  " * (len(head.split()) if head else 0)
    nested = "".join(f"{'  ' * i}{part}:\n" for i, part in enumerate(head.split()))
    value = value.replace("\n", "\n" + indent + "  ")
    return f"name: fuzz\n{nested}{indent}{leaf}: {value}\n".encode("utf-8", "surrogatepass")


SPEC_KEYS = ["search lr", "search loss.num_scales", "base epochs", "base data height", "name"]
SPEC_KEYS += ["budget n_trials", "sampler", "confirm", "search", "base", "nope"]
TRAIN_KEYS = ["epochs", "lr", "data height", "loss", "data path", "output_dir", "seed", "nope"]


@st.composite
def spec_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated"] * 6 + ["bomb", "deep", "odd", "odd", "binary"]))
    if kind == "mutated":
        return draw(damaged(_dump(draw, draw(mutated(TINY_SPEC, SPEC_FIELDS, spec=True)))))
    if kind == "bomb":
        return draw(bombs())
    if kind == "deep":
        return draw(deep())
    if kind == "odd":
        return draw(odd_values(SPEC_KEYS))
    return draw(st.binary(max_size=300))


TRAIN_PATHS = {tuple(p.split(".")): a for p, a in TRAIN_FIELDS.items()}


@st.composite
def train_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated"] * 6 + ["bomb", "deep", "odd", "odd", "binary"]))
    if kind == "mutated":
        return draw(damaged(_dump(draw, draw(mutated(TINY_BASE, TRAIN_PATHS, spec=False)))))
    if kind == "bomb":
        return draw(bombs())
    if kind == "deep":
        return draw(deep())
    if kind == "odd":
        return draw(odd_values(TRAIN_KEYS))
    return draw(st.binary(max_size=300))


# ---------------------------------------------------------------------------- checks

FUZZ = settings(
    derandomize=SCALE == 1,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
)
HEADER = re.compile(r"^Error: (?P<source>.+): (?P<n>\d+) problem\(s\)$")
UNEXPECTED = re.compile(r"unexpected \w+(Error|Exception|Exit)\b|run with --debug")


def check_rejection(code: int, output: str) -> int:
    """A rejected file's CLI output: exit 1 (2: click usage), no traceback, no
    "unexpected", one line or a header with exactly its N problems. Returns N."""
    assert "Traceback" not in output, output[:3000]
    # The CLI's words for an error that is no user error (a bug): "unexpected <Error>".
    assert UNEXPECTED.search(output) is None, output[:3000]
    assert code in (1, 2), (code, output[:3000])
    lines = output.rstrip("\n").splitlines()
    assert all(len(line) <= MAX_LINE for line in lines), max(len(line) for line in lines)
    if code == 2:  # click: "Usage: ..." then "Error: ..."
        assert lines[-1].startswith("Error: "), output
        return 1
    assert lines[0].startswith("Error: "), output[:3000]
    match = HEADER.match(lines[0])
    if match is None:
        assert len(lines) == 1, output[:3000]  # one line
        return 1
    n = int(match["n"])
    assert 1 <= n <= MAX_PROBLEMS, output[:3000]
    problems = lines[1:]
    assert len(problems) == n, output[:3000]
    assert all(p.startswith("  ") and p.strip() for p in problems), output[:3000]
    return n


class Cases:
    """How many cases a test ran, by outcome (the pinned ones among them counted apart);
    printed, and appended to ``$SALSWEEP_FUZZ_COUNTS`` (JSON lines) when it is set."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.counts: Counter[str] = Counter()
        self.pinned = 0

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self) -> None:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        print(f"\nfuzz {self.target}: {self.total} cases ({shown}; {self.pinned} pinned)")
        if file := os.environ.get("SALSWEEP_FUZZ_COUNTS"):
            record = {"target": self.target, "cases": self.total, "pinned": self.pinned}
            with open(file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({**record, **self.counts}) + "\n")


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _invoke_in(folder: Path, args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process with ``folder`` as the working folder."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: raised {result.exception!r}\n{result.output[:3000]}")
    return result.exit_code, result.output, result.stdout


# ---------------------------------------------------------------------------- sweep validate


# Cases the fuzzer (or the probing before it) found, each a crash, a hang or a wrong answer
# before its fix: pinned, so that they run every time. (target, file, what the CLI says:
# a piece of the message, or None for an accepted file.)
FOUND: list[tuple[str, bytes, str | None]] = [
    # RecursionError in PyYAML's composer
    ("validate", b"search:\n  lr: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper than 64"),
    ("train", b"data: {path: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"}\n", "nested deeper"),
    # ReaderError raised while the loader was made, outside the YAML error handler
    ("validate", b"name: a\x00b\n", "line 1, column 8: invalid YAML: character #x0000 is not"),
    # UnicodeDecodeError escaped load_train_config
    ("train", b"\xff\xfename: x\n", "not UTF-8 text: byte 0xff at offset 0"),
    # ValueError of int() past 4300 digits, and of repr() of a 0x... int that long
    ("validate", b"name: x\nsearch: {lr: " + b"9" * 5000 + b"}\n", "Exceeds the limit (4300"),
    ("validate", b"name: x\nsearch: {seed: 0x" + b"f" * 5000 + b"}\n", "more than 3900 digits"),
    ("train", b"epochs: 0x" + b"f" * 5000 + b"\n", "more than 3900 digits"),
    # PyYAML's constructors: ValueError (dates), KeyError (!!bool), IndexError (!!int '')
    ("validate", b"name: x\nsearch: {lr: 2020-13-45}\n", "timestamp: month must be in 1..12"),
    ("validate", b"name: x\nsearch: {lr: !!bool maybe}\n", "not a valid bool: 'maybe'"),
    ("train", b"epochs: !!int ''\n", "line 1, column 9: invalid YAML: not a valid int: ''"),
    # decimal.DivisionImpossible on a float step 1e28 times smaller than the range
    (
        "validate",
        b"name: x\nsearch: {lr: {low: 1.0e-4, high: 0.5, step: 1.0e-30}}\n",
        "search.lr.step: 1e-30 gives 5e+29 values, more than 1000000",
    ),
    # the grid listed in memory to be counted: 2^31 ints (16 GB, killed), 5e9 floats
    (
        "validate",
        b"name: x\nsearch: {data.seed: {low: 0, high: 2147483648}}\nsampler: grid\n",
        "search: the grid has 2.15e+09 points, more than 100000",
    ),
    (
        "validate",
        b"name: x\nsearch: {lr: {low: 1.0e-4, high: 0.5, step: 1.0e-10}}\nsampler: grid\n",
        "search.lr.step: 1e-10 gives 5e+09 values",
    ),
    # an empty int range of epochs: max() of no candidate values in the pruner check
    (
        "validate",
        b"name: x\nsearch: {epochs: {low: 5, high: 1}, lr: {low: 0.001, high: 0.002}}\n",
        "search.epochs.low: must be < high (got low=5, high=1)",
    ),
    # a merge key: "could not determine a constructor for the tag ...merge"
    ("validate", b"<<: {name: x}\nsearch: {lr: [0.1, 0.2]}\n", None),
    # a line longer than the console, wrapped by rich: the printed spec was no YAML
    ("validate", b"name: x\nsearch: {lr: [0.1, 0.2], data.path: " + b"p" * 300 + b"}\n", None),
    # a key with a control character broke the one-line-per-problem listing
    ("validate", b'name: x\nsearch: {lr: [0.1, 0.2], "a\\rb": 1}\n', "search.'a\\rb': not a"),
    # a 3000-character value echoed whole into the message
    ("validate", b"name: x\nsearch: {lr: " + b"x" * 3000 + b"}\n", "(3002 characters)"),
    # accepted, then crashed at run time: "unexpected ValueError: embedded null byte",
    # "Overflow when unpacking long long", "OverflowError: high - low range exceeds ..."
    ("train", b'output_dir: "a\\0b"\n', "output_dir: a path cannot contain a NUL character"),
    ("train", b"seed: 100000000000000000000000\n", "seed: Input should be less than or equal"),
    ("train", b"data: {max_depth: .inf}\n", "data.max_depth: Input should be less than or"),
    ("train", b"data: {min_depth: 1.0e-300}\n", "data.min_depth: Input should be greater than"),
    # safe YAML: a Python tag is refused with its line, and runs nothing (no file appears)
    (
        "validate",
        b"name: x\nsearch: {lr: !!python/object/apply:os.system ['touch PWNED']}\n",
        "line 2, column 14: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    (
        "train",
        b"lr: !!python/name:os.system\n",
        "constructor for the tag 'tag:yaml.org,2002:python",
    ),
    # an empty file trained every default (minutes) instead of saying it is empty
    ("train", b"", "empty file: no settings (write {} for every default)"),
    # duplicate keys: the last one won silently in a train config (a spec refused them)
    ("train", b"epochs: 1\nepochs: 2\n", "line 2: duplicate key 'epochs'"),
]


@pytest.mark.parametrize(("target", "content", "expected"), FOUND)
def test_found_cases(tmp_path: Path, target: str, content: bytes, expected: str | None) -> None:
    """Each case found says what is wrong (or is accepted), through the CLI in-process."""
    path = tmp_path / "file.yaml"
    path.write_bytes(content)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if target == "validate":
        args = ["sweep", "validate", str(path)]
    else:
        args = ["train", str(path), "--output-dir", str(tmp_path / "out")]
    code, output, _ = _invoke_in(cwd, args)
    if expected is None:
        assert code == 0, output[-3000:]
        return
    check_rejection(code, output)
    assert expected in output, output[:3000]
    assert _listing(cwd) == [] and not (tmp_path / "out").exists()


def test_sweep_validate_fuzz(tmp_path: Path) -> None:
    cases = Cases("sweep validate (in-process)")
    spec_path = tmp_path / "spec.yaml"
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def check(content: bytes) -> None:
        spec_path.write_bytes(content)
        code, output, stdout = _invoke_in(cwd, ["sweep", "validate", str(spec_path)])
        assert _listing(cwd) == [], "sweep validate created files"
        if code == 0:
            cases.add("accepted")
            assert "Traceback" not in output and UNEXPECTED.search(output) is None
            assert output.rstrip().endswith("valid"), output[-3000:]
            # The resolved spec it prints loads back to the same spec.
            assert parse_spec(yaml.safe_load(stdout), "printed") == load_spec(spec_path)
            return
        cases.add("rejected")
        check_rejection(code, output)
        with pytest.raises(SpecError):
            load_spec(spec_path)

    for target, content, _ in FOUND:
        if target != "validate":
            continue
        check(content)
        cases.pinned += 1
    fuzz = given(content=spec_files())(check)
    settings(FUZZ, max_examples=300 * SCALE)(example(yaml.safe_dump(TINY_SPEC).encode())(fuzz))()
    cases.report()
    # Both kinds occur in numbers: the generator is neither all-valid nor all-garbage.
    assert cases.counts["rejected"] >= 100 * SCALE, cases.counts
    assert cases.counts["accepted"] >= 10 * SCALE, cases.counts


# ---------------------------------------------------------------------------- train (load)


def test_train_config_fuzz(tmp_path: Path) -> None:
    """Rejected configs through `salsweep train` in-process (exit 1, a message, no output
    folder); accepted ones are only loaded (training them is not the point)."""
    cases = Cases("train (in-process, rejected configs)")
    config_path = tmp_path / "config.yaml"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "out"

    def check(content: bytes) -> None:
        config_path.write_bytes(content)
        try:
            load_train_config(config_path)
        except ConfigError:
            pass
        else:
            cases.add("accepted (loaded, not trained)")
            return
        cases.add("rejected")
        code, output, _ = _invoke_in(cwd, ["train", str(config_path), "--output-dir", str(out)])
        check_rejection(code, output)
        assert not out.exists(), "a rejected config created its output folder"
        assert _listing(cwd) == [], "a rejected config created files"

    for target, content, _ in FOUND:
        if target != "train":
            continue
        check(content)
        cases.pinned += 1
    settings(FUZZ, max_examples=250 * SCALE)(given(content=train_files())(check))()
    cases.report()
    assert cases.counts["rejected"] >= 100 * SCALE, cases.counts
    assert cases.counts["accepted (loaded, not trained)"] >= 10 * SCALE, cases.counts


# ---------------------------------------------------------------------------- real processes


def _salsweep(
    salsweep: SalsweepProcess, *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return salsweep.run(
        *args,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )


# Rejected specs launched as real processes: one of each kind.
LAUNCH_CORPUS: list[bytes] = [
    b"",
    b"\x00\xff\xfe binary \x80\x81",
    b"name: x\nname: y\nsearch: {lr: [0.1, 0.2]}\n",
    b"name: x\nsearch: {lr: !!python/object/apply:os.system ['touch PWNED']}\n",
    b"search:\n" + _bomb(9, 9, "list").encode() + b"\n  lr: *a9\nname: *a9\nbase: *a9\n",
    b"search:\n  lr: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n",
    b"name: x\nsearch: {lr: " + b"9" * 5000 + b"}\n",
    b"name: x\nsearch: {lr: {low: .nan, high: .inf}, epochs: {low: 1, high: 99999999999}}\n",
    b"name: x\nsearch: {data.seed: {low: 0, high: 2147483648}}\nsampler: grid\n",
    b'name: x\nbase: {output_dir: "a\\0b", seed: 100000000000000000000000}\n'
    b"search: {lr: {low: 0.001, high: 0.01}}\n",
    b"name: ../../evil\nsearch: {lr: [0.1, 0.2]}\n",
]


@pytest.mark.slow
def test_sweep_launch_rejects_fuzzed_specs(
    tmp_path: Path, mlflow_server: Any, salsweep_process: SalsweepProcess
) -> None:
    """`sweep launch --n-trials 1` as a real process: every rejected spec exits 1 with its
    message before anything exists: no data dir (Optuna storage), no MLflow experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.url)
    before = {e.name for e in client.search_experiments()}
    cases = Cases("sweep launch --n-trials 1 (subprocess, rejected specs)")
    generated: list[bytes] = []

    def pick(content: bytes) -> None:
        path = tmp_path / "pick.yaml"
        path.write_bytes(content)
        try:
            load_spec(path)
        except SpecError:
            generated.append(content)

    settings(FUZZ, max_examples=6 * SCALE)(given(content=spec_files())(pick))()
    for i, content in enumerate([*LAUNCH_CORPUS, *generated]):
        spec = tmp_path / f"spec-{i}.yaml"
        spec.write_bytes(content)
        home, cwd, study = tmp_path / f"home-{i}", tmp_path / f"cwd-{i}", f"fuzz-launch-{i}"
        cwd.mkdir()
        done = _salsweep(
            salsweep_process,
            "sweep",
            "launch",
            str(spec),
            "--n-trials",
            "1",
            "--study-name",
            study,
            "--home",
            str(home),
            "--tracking-uri",
            mlflow_server.url,
            cwd=cwd,
        )
        check_rejection(done.returncode, done.stdout + done.stderr)
        assert not home.exists(), f"case {i}: the data dir was created"
        assert _listing(cwd) == [], f"case {i}: files created"
        assert client.get_experiment_by_name(study) is None, f"case {i}: experiment created"
        cases.add("rejected (corpus)" if i < len(LAUNCH_CORPUS) else "rejected (generated)")
    assert {e.name for e in client.search_experiments()} == before
    cases.report()
    assert cases.counts["rejected (generated)"] >= 3 * SCALE, cases.counts


TRAIN_CORPUS: list[bytes] = [
    b"",
    b"\x89PNG\r\n\x1a\n\x00\x00 garbage",
    b"epochs: 1\nepochs: 2\n",
    b"epochs: !!python/object/apply:os.system ['touch PWNED']\n",
    b"loss: " + b"[" * 3000 + b"]" * 3000 + b"\n",
    b"data: {max_depth: .inf, min_depth: 1.0e-300}\nseed: 100000000000000000000000\n",
    b'output_dir: "a\\0b"\n',
    b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"loss: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\ndata: *c\n",
]


@pytest.mark.slow
def test_train_rejects_fuzzed_configs(tmp_path: Path, salsweep_process: SalsweepProcess) -> None:
    """`salsweep train` as a real process on rejected configs: exit 1 with the problems,
    no output folder, nothing in the working folder."""
    cases = Cases("train (subprocess, rejected configs)")
    for i, content in enumerate(TRAIN_CORPUS):
        config = tmp_path / f"config-{i}.yaml"
        config.write_bytes(content)
        cwd, out = tmp_path / f"cwd-{i}", tmp_path / f"out-{i}"
        cwd.mkdir()
        done = _salsweep(salsweep_process, "train", str(config), "--output-dir", str(out), cwd=cwd)
        check_rejection(done.returncode, done.stdout + done.stderr)
        assert not out.exists() and _listing(cwd) == [], f"case {i}: files created"
        cases.add("rejected")
    cases.report()


# ---------------------------------------------------------------------------- a valid oddity

# Valid YAML oddities in one spec: a BOM, CRLF line ends, anchors, aliases and a merge key,
# flow and block style, comments with tabs, quoted keys, a document marker.
ODD_VALID_SPEC = (
    "\ufeff%YAML 1.1\n---\n"
    "# a comment\twith a tab\n"
    "name: 'fuzz-valid'\n"
    "base: &base\n"
    "  <<: {epochs: 1, steps_per_epoch: 1, batch_size: 2, device: cpu, previews: false}\n"
    "  data: &data {height: 32, width: 64, num_train: 8, num_val: 2, num_test: 2}\n"
    "  model: {base_channels: 4, num_stages: 2}\n"
    "  loss: {num_scales: 2}\n"
    "search:\n"
    '  "loss.lambda_sg": {low: 0.1, high: 1.0, log: yes}\n'
    "  loss.use_inv_depth: bool\n"
    "budget: {n_trials: 2}\n"
    "sampler: {type: random, seed: 0}\n"
    "pruner: none\n"
    "...\n"
).replace("\n", "\r\n")


def test_odd_but_valid_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(ODD_VALID_SPEC.encode())
    spec = load_spec(path)
    assert spec.name == "fuzz-valid"
    assert spec.base.epochs == 1 and spec.base.data.height == 32 and not spec.base.previews
    assert spec == parse_spec(yaml.safe_load(spec_to_yaml(spec)))


@pytest.mark.slow
def test_odd_but_valid_spec_launches(tmp_path: Path, mlflow_server: Any) -> None:
    """An accepted spec written with YAML oddities trains: `sweep launch --n-trials 1`
    (in-process: what is checked is the spec's way into a real sweep, not the process)."""
    from mlflow.tracking import MlflowClient

    from studies import load_study
    from studies.home import default_storage_url

    spec = tmp_path / "odd.yaml"
    spec.write_bytes(ODD_VALID_SPEC.encode())
    home = tmp_path / "home"
    study = "fuzz-valid-launch"
    args = ["sweep", "launch", str(spec), "--n-trials", "1", "--study-name", study]
    code, output, _ = _invoke_in(
        tmp_path, [*args, "--home", str(home), "--tracking-uri", mlflow_server.url]
    )
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    trials = load_study(study, default_storage_url(home)).trials
    assert [t.state.name for t in trials] == ["COMPLETE"]
    assert MlflowClient(mlflow_server.url).get_experiment_by_name(study) is not None


# Helpers the tests above use, checked on their own so that a wrong check cannot pass all.
def test_check_rejection_catches_bad_outputs() -> None:
    bad: list[tuple[int, str]] = [
        (0, "Error: x: 1 problem(s)\n  a: b\n"),
        (1, "Error: unexpected ValueError: boom (run with --debug for the traceback)\n"),
        (1, "Traceback (most recent call last):\n"),
        (1, "Error: x: 2 problem(s)\n  a: b\n"),
        (1, "Error: x\nsecond line\n"),
        (1, "Error: x: 1 problem(s)\n  " + "y" * (MAX_LINE + 1) + "\n"),
    ]
    for code, output in bad:
        with pytest.raises(AssertionError):
            check_rejection(code, output)
    assert check_rejection(1, "Error: x: 2 problem(s)\n  a: b\n  c: d\n") == 2
    assert check_rejection(1, "Error: one line\n") == 1
