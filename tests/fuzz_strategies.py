"""Shared pieces of the property-based fuzzers (tests/test_fuzz_*.py): settings, mutators and the
property every fuzzed reader must keep.

The property: an input ends in a valid read or in a ``VdcError`` whose message is one non-empty
line (an ``ArchiveError`` also carries an enumerated code); never another exception, never a
file written outside the temporary folders, never a hang, and never a jump in the process's peak
memory of more than ``MEMORY_BOUND`` (inputs are at most a few hundred KB, so a jump means a
reader allocated what a header *claims*, not what the input holds).

Budget: the default (CI) run is bounded by ``max_examples`` per test, chosen so that all fuzz
tests together take 60-90 s on two shared cores, and derandomized (fixed inputs, no example
database) so CI is reproducible. ``VDCBENCH_FUZZ_EXAMPLES=N`` gives every fuzz test N examples,
drawn at random (``VDCBENCH_FUZZ_SEED`` pins the draw), for a long local run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from vdcbench.core.errors import VdcError

# ------------------------------------------------------------------------------------ budget
LONG_EXAMPLES = int(os.environ.get("VDCBENCH_FUZZ_EXAMPLES", "0") or 0)
LONG_SEED = os.environ.get("VDCBENCH_FUZZ_SEED")
MEMORY_BOUND = 1 << 30          # bytes the peak RSS may grow by during one fuzz test
HANG_SECONDS = 30.0             # one input that takes longer is a hang


def fuzz_settings(ci_examples: int) -> settings:
    """``ci_examples`` in the default run; ``VDCBENCH_FUZZ_EXAMPLES`` in a long one."""
    long_run = LONG_EXAMPLES > 0
    return settings(
        max_examples=LONG_EXAMPLES if long_run else ci_examples,
        deadline=None,                 # timing on shared cores is noise; hangs: HANG_SECONDS
        derandomize=not long_run and LONG_SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )


# ------------------------------------------------------------------------------ the property
class Outcome:
    """Counts of how inputs ended, for the summary line a long run prints."""

    def __init__(self, name: str):
        self.name = name
        self.valid = 0
        self.refused: dict[str, int] = {}
        self.started: float | None = None      # at the first input, not at import

    @property
    def total(self) -> int:
        return self.valid + sum(self.refused.values())

    def summary(self) -> str:
        seconds = time.monotonic() - (self.started or time.monotonic())
        top = sorted(self.refused.items(), key=lambda kv: -kv[1])[:8]
        return (f"fuzz {self.name}: {self.total} inputs in {seconds:.1f} s "
                f"({self.total / max(seconds, 1e-9):.0f}/s); valid {self.valid}; refused "
                + ", ".join(f"{k} {v}" for k, v in top))


def check_one_line(err: VdcError) -> None:
    message = str(err)
    assert message.strip(), f"{type(err).__name__} with an empty message"
    assert "\n" not in message and "\r" not in message, f"multi-line message: {message!r}"


def expect_valid_or_refused(call: Callable[[], Any], outcome: Outcome) -> Any:
    """Run ``call``: its value on a valid read, None on a one-line ``VdcError``; anything else
    (another exception, a message over lines, a hang, a memory jump) fails the example."""
    from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode

    started = time.monotonic()
    if outcome.started is None:
        outcome.started = started
    try:
        value = call()
    except VdcError as err:
        check_one_line(err)
        if isinstance(err, ArchiveError):
            assert isinstance(err.code, ArchiveErrorCode), f"refusal without a code: {err}"
            key = err.code.value
        else:
            key = type(err).__name__
        outcome.refused[key] = outcome.refused.get(key, 0) + 1
        value = None
    else:
        outcome.valid += 1
    elapsed = time.monotonic() - started
    if LONG_EXAMPLES and outcome.total % 2000 == 0:
        print(outcome.summary(), file=sys.stderr, flush=True)     # a long run's progress
    assert elapsed < HANG_SECONDS, f"one input took {elapsed:.1f} s (a hang?)"
    return value


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@contextlib.contextmanager
def memory_bounded(bound: int = MEMORY_BOUND):
    """Fails if the process's peak RSS grew by more than ``bound`` inside the block."""
    before = peak_rss_bytes()
    yield
    grown = peak_rss_bytes() - before
    assert grown <= bound, f"peak memory grew by {grown >> 20} MiB (bound {bound >> 20} MiB)"


# -------------------------------------------------------------------- writes outside tmp
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.rename": 2, "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.truncate": 1,
                "os.chmod": 1, "os.symlink": 2, "os.link": 2, "shutil.rmtree": 1,
                "os.utime": 1, "os.chown": 1}


class _WriteWatch:
    active = False
    allowed: tuple[str, ...] = ()
    violations: list[str] = []
    installed = False


def _outside(path: Any) -> str | None:
    if isinstance(path, int):
        return None
    try:
        full = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None
    if any(full == a or full.startswith(a + os.sep) for a in _WriteWatch.allowed):
        return None
    return full


def _audit(event: str, args: tuple) -> None:
    if not _WriteWatch.active:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes and (where := _outside(path)):
            _WriteWatch.violations.append(f"open {where} ({mode or flags})")
    elif event in _PATH_EVENTS:
        for path in args[:_PATH_EVENTS[event]]:
            if where := _outside(path):
                _WriteWatch.violations.append(f"{event} {where}")


@contextlib.contextmanager
def no_writes_outside(*allowed: str | os.PathLike[str]):
    """Fails if anything in the block opens a file for writing, renames, removes or creates
    a path outside ``allowed`` and the system's temporary folder (a Python audit hook)."""
    if not _WriteWatch.installed:
        sys.addaudithook(_audit)
        _WriteWatch.installed = True
    _WriteWatch.allowed = tuple(os.path.realpath(os.fspath(a))
                                for a in (*allowed, tempfile.gettempdir()))
    _WriteWatch.violations = []
    _WriteWatch.active = True
    try:
        yield
    finally:
        _WriteWatch.active = False
    assert not _WriteWatch.violations, f"wrote outside tmp: {_WriteWatch.violations[:3]}"


# ------------------------------------------------------------------------- byte mutations
def byte_mutations(size: int, hot: tuple[int, ...] = ()) -> st.SearchStrategy:
    """Up to eight edits of a ``size``-byte input: flip a bit, set a byte, insert, delete, cut.
    Half the positions fall near ``hot`` offsets (headers, where structure lives)."""
    anywhere = st.integers(0, max(size - 1, 0))
    if hot:
        near = st.tuples(st.sampled_from(hot), st.integers(-16, 600)).map(
            lambda t: min(max(t[0] + t[1], 0), max(size - 1, 0)))
        position = st.one_of(near, anywhere)
    else:
        position = anywhere
    edit = st.one_of(
        st.tuples(st.just("flip"), position, st.integers(0, 7)),
        st.tuples(st.just("set"), position, st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("0"),
                                                             ord("9"), ord(" "), ord('"'),
                                                             ord("{"), ord("\n")])
                  | st.integers(0, 255)),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("delete"), position, st.integers(1, 600)),
        st.tuples(st.just("truncate"), position, st.just(0)),
    )
    return st.lists(edit, min_size=1, max_size=4)


def apply_byte_mutations(data: bytes, edits: list[tuple]) -> bytes:
    out = bytearray(data)
    for kind, pos, arg in edits:
        pos = min(pos, len(out))
        if kind == "flip" and pos < len(out):
            out[pos] ^= 1 << arg
        elif kind == "set" and pos < len(out):
            out[pos] = arg
        elif kind == "insert":
            out[pos:pos] = arg
        elif kind == "delete":
            del out[pos:pos + arg]
        elif kind == "truncate":
            del out[pos:]
    return bytes(out)


# ------------------------------------------------------------------------- JSON mutations
# Spelled into the JSON text after dumping: what json.dumps cannot produce, or produces only
# as one spelling. The marker is a string value, replaced with the raw text.
RAW_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "1" + "0" * 400,
               "-" + "9" * 320, "1.7976931348623157e308", "4.9e-324", "9007199254740993",
               "18446744073709551616", "0.0", "1E2", "-1")
_RAW_MARK = "\x00raw:"


def raw(text: str) -> str:
    return f"{_RAW_MARK}{text}"


def json_leaves() -> st.SearchStrategy:
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
        st.sampled_from([0, 1, -1, 2 ** 31, 2 ** 53 + 1, 2 ** 63, 2 ** 64, 10 ** 30]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(["", " ", "\n", "../../etc/passwd", "/abs", "a\nb", "\u2028",
                         "x" * 5000, "synthetic", "ipc1-t8", "hard", "soft", "multi-sl",
                         "official", "uint8", "float32", "int64", "U8", "F32", "raw", "jpeg",
                         "selection", "distillation", "0" * 64, "f" * 64]),
        st.sampled_from(RAW_NUMBERS).map(raw),
    )


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    return st.recursive(json_leaves(),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=max_leaves)


def json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys and indices) in ``value``, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += json_paths(v, prefix + (i,))
    return out


def _get(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


def _retype(value: Any) -> list[Any]:
    """The value in other JSON types."""
    options: list[Any] = [None, str(value), [value], {"value": value}, not value]
    if isinstance(value, bool):
        options += [int(value)]
    elif isinstance(value, (int, float)):
        options += [float(value), -value, value + 1, value * 2 ** 40, raw("1e400"), raw("NaN"),
                    str(value).encode().hex()]
        if isinstance(value, float) and math.isfinite(value):
            options += [int(value)]
    elif isinstance(value, str):
        options += ["", value + "x", value.upper(), value * 50, value[:-1], 0, value + "\n"]
    elif isinstance(value, list):
        options += [[], value + value, value[:-1], value[::-1], [value]]
    elif isinstance(value, dict):
        options += [{}, list(value.values()), list(value)]
    return options


@st.composite
def json_mutation(draw, document: Any) -> Any:
    """One edit of a deep copy of ``document``: a key removed, a value replaced by junk or
    retyped, a key added, or a list grown or cut."""
    doc = json.loads(json.dumps(document))
    paths = json_paths(doc)
    numbers = [p for p in paths if p and isinstance(_get(doc, p), (int, float))
               and not isinstance(_get(doc, p), bool)]
    if numbers and draw(st.integers(0, 3)) == 0:
        # Numbers are where readers trust most (sizes, counts, offsets): hit them often.
        path = draw(st.sampled_from(numbers))
        _get(doc, path[:-1])[path[-1]] = draw(
            st.sampled_from(RAW_NUMBERS).map(raw)
            | st.sampled_from([-1, 0, 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 30, 1e300, -1e300, 0.5,
                               True, "1"]))
        return doc
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["remove", "replace", "retype", "add", "retype", "replace"]))
    if not path:
        # The root itself.
        if action in ("replace", "retype", "remove"):
            return draw(st.sampled_from([None, [], "", 0, [doc], raw("NaN")]) | json_values())
        path_target = doc
    else:
        parent, key = _get(doc, path[:-1]), path[-1]
        if action == "remove":
            del parent[key]
            return doc
        if action == "replace":
            parent[key] = draw(json_values())
            return doc
        if action == "retype":
            parent[key] = draw(st.sampled_from(_retype(parent[key])))
            return doc
        path_target = parent[key]
    # add
    if isinstance(path_target, dict):
        name = draw(st.sampled_from(["extra", "__proto__", "", "format", "x" * 300]) |
                    st.text(max_size=8))
        path_target[name] = draw(json_values())
    elif isinstance(path_target, list):
        path_target.insert(draw(st.integers(0, len(path_target))), draw(json_values()))
    return doc


def mutated_json(document: Any, max_edits: int = 3) -> st.SearchStrategy:
    """``document`` after 1..max_edits edits."""
    @st.composite
    def edits(draw):
        doc = document
        for _ in range(draw(st.integers(1, max_edits))):
            doc = draw(json_mutation(doc))
        return doc
    return edits()


def encode_json(value: Any, *, indent: int | None = 2, duplicate_key: str | None = None) -> bytes:
    """JSON text of ``value`` with raw markers spelled out; ``duplicate_key`` repeats the first
    key of the top-level object with that name."""
    text = json.dumps(value, indent=indent, allow_nan=True, ensure_ascii=False, sort_keys=False)

    def unmark(t: str) -> str:
        mark = json.dumps(_RAW_MARK)[1:-1]    # how the marker looks inside a JSON string
        while (start := t.find('"' + mark)) >= 0:
            end = t.index('"', start + 1)
            t = t[:start] + t[start + 1 + len(mark):end] + t[end + 1:]
        return t

    text = unmark(text)
    if duplicate_key is not None and text.startswith("{"):
        text = "{" + json.dumps(duplicate_key) + ": 1, " + text[1:]
    return text.encode("utf-8", errors="surrogatepass")


def json_documents(document: Any) -> st.SearchStrategy:
    """Bytes of ``document`` mutated structurally (most) or at the byte level (some)."""
    structural = st.builds(
        lambda doc, indent, dup: encode_json(doc, indent=indent, duplicate_key=dup),
        mutated_json(document), st.sampled_from([2, None]),
        st.none() | st.none() | st.none() | st.sampled_from(["format", "x"]))
    plain = encode_json(document)
    textual = byte_mutations(len(plain)).map(lambda e: apply_byte_mutations(plain, e))
    return st.one_of(structural, structural, structural, textual)
