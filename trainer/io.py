"""The trainer's files: a `TrainConfig` read and written as YAML, and a run's outputs
(checkpoint, previews) written so that a full disk is one clear error.

Outputs are written whole or not at all: the bytes go to a temporary file in the same
folder, renamed over the target once complete, so a write that fails half-way (no space
left) leaves the previous ``best.pt`` as it was and no truncated file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trainer.config import TrainConfig
from trainer.errors import UserError
from trainer.validation import describe_validation_error

__all__ = [
    "MAX_YAML_DEPTH",
    "NO_SPACE_ERRNOS",
    "ConfigError",
    "OutputError",
    "OutputSpaceError",
    "YamlFileError",
    "dump_train_config",
    "load_train_config",
    "make_output_dir",
    "parse_train_config",
    "read_yaml",
    "write_output",
]

# What a full disk looks like to a write: no space on the device (ENOSPC, inodes too),
# the user's quota spent (EDQUOT), or the process's file-size limit reached (EFBIG,
# RLIMIT_FSIZE).
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class ConfigError(UserError, ValueError):
    """A training config that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        body = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{body}")


def parse_train_config(data: Any, source: str = "<config>") -> TrainConfig:
    """Validate a mapping as a `TrainConfig`, reporting every problem with its key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a mapping, got {type(data).__name__}"])
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc, TrainConfig)) from None


def load_train_config(path: Path) -> TrainConfig:
    """Load a YAML training config (comment lines, e.g. an export header, are fine).

    An empty file is an error (a truncated or wrong file; every default is ``{}``)."""
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        raise ConfigError(str(path), exc.problems) from None
    if data is None:
        raise ConfigError(str(path), ["empty file: no settings (write {} for every default)"])
    return parse_train_config(data, str(path))


# ---------------------------------------------------------------------------- safe YAML

# Nesting deeper than this is no config: refused with its line instead of running PyYAML's
# recursive composer into a RecursionError.
MAX_YAML_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_INT_BITS = 13_000  # about 3900 decimal digits


class YamlFileError(ValueError):
    """A YAML file that cannot be read as data; ``problems`` holds one line per problem.

    Not a `UserError` itself: each reader turns it into its own error naming the file
    (`ConfigError`, ``sweeps.SpecError``).
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _SafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (no Python tags) that records duplicate keys, which ``safe_load``
    resolves silently to the last one, and refuses nesting deeper than `MAX_YAML_DEPTH`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    problem=f"nested deeper than {MAX_YAML_DEPTH} levels",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        kind = str(node.tag).rsplit(":", 1)[-1]
        try:
            data = super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:
            # A scalar PyYAML's constructors fail on with a Python error: an integer of more
            # than 4300 digits, a date such as 2024-13-01, `!!bool maybe` (KeyError),
            # `!!int ''` (IndexError), `!!timestamp x` (AttributeError). An error at its
            # line, like any other YAML error.
            if isinstance(exc, ValueError | OverflowError):
                problem = f"cannot read this {kind}: {str(exc).split(';')[0]}"
            else:
                value = str(getattr(node, "value", ""))
                problem = f"not a valid {kind}: {value[:40]!r}"
            raise yaml.constructor.ConstructorError(
                problem=problem, problem_mark=node.start_mark
            ) from None
        # 0x.. or 1:2:3 (base 60) integers too long to print in decimal: every message
        # that shows the value would fail on them (Python's 4300-digit limit).
        if isinstance(data, int) and data.bit_length() > _MAX_INT_BITS:
            raise yaml.constructor.ConstructorError(
                problem=f"cannot read this {kind}: more than 3900 digits",
                problem_mark=node.start_mark,
            )
        return data

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *anchor` merges keys; later ones override
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                self.duplicates.append((str(key), key_node.start_mark.line + 1))
            seen.add(key if isinstance(key, str | int | float | bool) else id(key_node))
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(text: str, exc: yaml.YAMLError) -> str:
    """A YAML error on one line: ``line L, column C: invalid YAML: problem``."""
    where = ""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}: "
    if isinstance(exc, yaml.reader.ReaderError):  # a character offset, no mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        where = f"line {line}, column {column}: "
        problem = f"character #x{exc.character:04x} is not allowed in YAML"
    else:
        problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}invalid YAML: {' '.join(str(problem).split())}"


def read_yaml(path: Path) -> Any:
    """The data of a YAML file, read safely: UTF-8 text, `yaml.SafeLoader` (a
    ``!!python/...`` tag is an error), no duplicate keys, nesting at most
    `MAX_YAML_DEPTH` deep; None for an empty file. Raises `YamlFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlFileError(["file not found"]) from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise YamlFileError(
            [f"not UTF-8 text: byte {byte:#04x} at offset {exc.start} cannot be decoded"]
        ) from None
    except OSError as exc:
        raise YamlFileError([f"cannot read: {exc.strerror or exc}"]) from None
    loader: _SafeLoader | None = None
    try:
        loader = _SafeLoader(text)  # the reader checks every character first
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise YamlFileError([_yaml_problem(text, exc)]) from None
    except RecursionError:  # a safety net: the depth limit above comes first
        raise YamlFileError([f"invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.duplicates:
        lines = sorted(loader.duplicates, key=lambda d: d[1])
        raise YamlFileError([f"line {n}: duplicate key {k!r}" for k, n in lines])
    return data


def dump_train_config(config: TrainConfig) -> str:
    """The config as YAML text that `load_train_config` reads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


class OutputError(UserError, OSError):
    """A run output (checkpoint, preview, output folder) that cannot be written.

    ``folder`` is where it goes, ``file`` its name (empty: the folder itself could not be
    made), ``errno`` the operating system's error number.
    """

    def __init__(self, folder: Path, file: str, error: OSError) -> None:
        self.folder = folder
        self.file = file
        self.reason = error.strerror or type(error).__name__
        super().__init__(self._message())
        self.errno = error.errno

    def _message(self) -> str:
        what = f"writing {self.file}" if self.file else "creating it"
        return f"cannot write in {self.folder} while {what}: {self.reason}"

    def __str__(self) -> str:
        return self._message()


class OutputSpaceError(OutputError):
    """No space left where the run's outputs go (a full disk, a spent quota, a file-size
    limit). Every later write there would fail the same way: free space, then run again."""

    def _message(self) -> str:
        what = f"writing {self.file}" if self.file else "creating it"
        return f"no space left in {self.folder} while {what}: free space there, then run again"


def _output_error(folder: Path, file: str, error: OSError) -> OutputError:
    cls = OutputSpaceError if error.errno in NO_SPACE_ERRNOS else OutputError
    return cls(folder, file, error)


def make_output_dir(folder: Path) -> Path:
    """Create ``folder`` (and its parents); raises `OutputError` / `OutputSpaceError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(folder, "", exc) from exc
    return folder


def write_output(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (a temporary file in the same folder,
    renamed over ``path``); creates the folder. A failed write removes the temporary file
    and leaves any previous ``path`` untouched; it raises `OutputSpaceError` when the
    folder has no space left, `OutputError` for other causes (permissions, ...)."""
    folder = make_output_dir(path.parent)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _output_error(folder, path.name, exc) from exc
    return path
