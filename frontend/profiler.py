"""`mx.profiler`: MXNet 1.9.1's profiler API over what Ember runs, written as a Chrome trace (chrome://tracing).

While the state is 'run' and not paused (`RUNNING`), it records every run of a compiled program (through
the runtime's `observers.RUN_OBSERVER` hook; one span per kernel where the device times them),
imperative operators (the NDArray op path calls `record_event`), and the spans, counter values and
markers of the user's `Task`/`Frame`/`Event`/`Counter`/`Marker`. `dump()` writes
{"traceEvents": [...], "displayTimeUnit": "ms"}; `dumps()` returns the aggregate statistics.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
import warnings

from ember.runtime import observers
from ember.runtime.errors import MXNetError
from ember.runtime.files import write_atomic

# -- configuration ----------------------------------------------------------------------------------


def _parse_bool(key: str, value) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise MXNetError(f"profiler.set_config: {key} must be a boolean, not {value!r}")


def _parse_period(key: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MXNetError(f"profiler.set_config: {key} must be a number of seconds, not {value!r}") from None


def _parse_process(key: str, value) -> str:
    return _check_process(str(value), "set_config")


# argument -> (default, parser): MXNet 1.9.1's ProfileConfigParam. Every set_config call starts again
# from these defaults, as MXNet's does: an argument left out takes its default, not its previous value.
_CONFIG_FIELDS = {
    "profile_all": (False, _parse_bool),
    "profile_symbolic": (True, _parse_bool),
    "profile_imperative": (True, _parse_bool),
    "profile_memory": (True, _parse_bool),
    "profile_api": (True, _parse_bool),
    "filename": ("profile.json", lambda key, value: str(value)),
    "continuous_dump": (True, _parse_bool),
    "dump_period": (1.0, _parse_period),
    "aggregate_stats": (False, _parse_bool),
    "profile_process": ("worker", _parse_process),
}
# event category -> the configuration switch that records it (other categories: always, while running)
_CATEGORY_SWITCH = {
    "operator": "profile_imperative",
    "program": "profile_symbolic",
    "kernel": "profile_symbolic",
}


class ProfilerChoiceError(MXNetError, KeyError):
    """A choice MXNet looks up in a table (state, profile_process, format, sort_by) that is not in it:
    a KeyError, as MXNet raises, and an MXNetError."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# -- the recorder's state ---------------------------------------------------------------------------

_LOCK = threading.RLock()
_config: dict = {key: default for key, (default, _) in _CONFIG_FIELDS.items()}
_state = "stop"
_paused = False
_output_enabled = False  # set by set_state('run'), cleared by dump(finished=True): MXNet's enable_output
_events: list[dict] = []
_category_pids: dict[str, int] = {}
_stats: dict[str, dict[str, list[float]]] = {}  # category -> name -> [count, total, min, max] (microseconds)
_kvstore_handle = None

RUNNING = False
"""True while events are being recorded (state 'run', not paused): the one flag hot paths read."""


def _switched_on(category: str) -> bool:
    switch = _CATEGORY_SWITCH.get(category)
    return switch is None or _config["profile_all"] or _config[switch]


def _update_running() -> None:
    """Recompute RUNNING and install (or remove) the runtime's program hook to match."""
    global RUNNING
    RUNNING = _state == "run" and not _paused
    observers.RUN_OBSERVER = _observe_program if RUNNING and _switched_on("program") else None


def _pid(category: str) -> int:
    """One trace process per category, as MXNet gives its non-device items (named by a metadata event)."""
    return _category_pids.setdefault(category, len(_category_pids))


def _append(event: dict, category: str, name: str, duration_us: float | None) -> None:
    with _LOCK:
        event["pid"] = _pid(category)
        _events.append(event)
        if duration_us is not None and _config["aggregate_stats"]:
            stat = _stats.setdefault(category, {}).setdefault(name, [0, 0.0, float("inf"), 0.0])
            stat[0] += 1
            stat[1] += duration_us
            stat[2] = min(stat[2], duration_us)
            stat[3] = max(stat[3], duration_us)


def record_event(name: str, category: str, start_ns: int, end_ns: int, args: dict | None = None) -> None:
    """Record one span (a Chrome complete event, 'ph': 'X') of `category` from `start_ns` to `end_ns`
    (time.perf_counter_ns() values); nothing happens unless RUNNING and the category is switched on
    (category 'operator' by profile_imperative, 'program' and 'kernel' by profile_symbolic). Thread-safe."""
    if not RUNNING or not _switched_on(category):
        return
    duration_us = (end_ns - start_ns) / 1000
    event = {"name": name, "cat": category, "ph": "X", "ts": start_ns / 1000, "dur": duration_us,
             "tid": threading.get_native_id()}  # fmt: skip
    if args:
        event["args"] = dict(args)
    _append(event, category, name, duration_us)


def _observe_program(program: str, kernels: tuple, start_ns: int, end_ns: int, kernel_spans) -> None:
    """The runtime's RUN_OBSERVER: one 'program' span naming its kernels, and one 'kernel' span per
    kernel the device timed."""
    record_event(program, "program", start_ns, end_ns, {"kernels": list(kernels)})
    for kernel, kernel_start, kernel_end in kernel_spans or ():
        record_event(kernel, "kernel", kernel_start, kernel_end, {"program": program})


def _record_instant(event: dict, category: str) -> None:
    """Record a counter value or a marker (no duration, not in the aggregate statistics)."""
    if RUNNING:
        event.update(cat=category, ts=time.perf_counter_ns() / 1000, tid=threading.get_native_id())
        _append(event, category, event["name"], None)


# -- the control functions --------------------------------------------------------------------------


def _check_process(profile_process, caller: str) -> str:
    if profile_process == "worker":
        return profile_process
    if profile_process == "server":
        raise MXNetError(
            f"profiler.{caller}: profile_process='server' profiles the servers of a distributed kvstore, "
            "which come with distributed training; Ember profiles this process only ('worker')"
        )
    raise ProfilerChoiceError(
        f"profiler.{caller}: profile_process must be 'worker' or 'server', not {profile_process!r}"
    )


def set_config(**kwargs) -> None:
    """Configure the profiler (keyword arguments only): profile_all, profile_symbolic, profile_imperative,
    profile_memory, profile_api, filename, continuous_dump, dump_period, aggregate_stats, profile_process.
    Arguments left out take their defaults again, as in MXNet."""
    global _config
    config = {key: default for key, (default, _) in _CONFIG_FIELDS.items()}
    for key, value in kwargs.items():
        if key not in _CONFIG_FIELDS:
            known = ", ".join(_CONFIG_FIELDS)
            raise MXNetError(f"profiler.set_config: unknown argument {key!r}; the arguments are {known}")
        config[key] = _CONFIG_FIELDS[key][1](key, value)
    if config["continuous_dump"] and config["dump_period"] <= 0:
        raise MXNetError(f"profiler.set_config: dump_period must be positive, not {config['dump_period']}")
    with _LOCK:
        _config = config
        if not config["aggregate_stats"]:
            _stats.clear()
        _update_running()


def profiler_set_config(mode: str = "symbolic", filename: str = "profile.json") -> None:
    """Deprecated form of set_config: turns on profile_<mode> ('symbolic' or 'all') and sets filename."""
    warnings.warn("profiler.profiler_set_config() is deprecated; use profiler.set_config()", stacklevel=2)
    set_config(**{"profile_" + str(mode): True, "filename": filename})


def set_state(state: str = "stop", profile_process: str = "worker") -> None:
    """Start ('run') or stop ('stop') recording. Starting also resumes a paused profiler and makes
    `dump()` possible; anything else raises ProfilerChoiceError (a KeyError, as in MXNet)."""
    global _state, _paused, _output_enabled
    if state not in ("run", "stop"):
        raise ProfilerChoiceError(f"profiler.set_state: state must be 'run' or 'stop', not {state!r}")
    _check_process(profile_process, "set_state")
    with _LOCK:
        _state = state
        _paused = state == "stop"
        _output_enabled = _output_enabled or state == "run"
        _update_running()


def profiler_set_state(state: str = "stop") -> None:
    """Deprecated form of set_state."""
    warnings.warn("profiler.profiler_set_state() is deprecated; use profiler.set_state()", stacklevel=2)
    set_state(state)


def pause(profile_process: str = "worker") -> None:
    """Stop recording until `resume()`; the state stays 'run'."""
    global _paused
    _check_process(profile_process, "pause")
    with _LOCK:
        _paused = True
        _update_running()


def resume(profile_process: str = "worker") -> None:
    """Record again after `pause()` (while the state is 'run')."""
    global _paused
    _check_process(profile_process, "resume")
    with _LOCK:
        _paused = False
        _update_running()


def set_kvstore_handle(handle) -> None:
    """Remember the kvstore whose servers profile_process='server' would profile (Ember has none)."""
    global _kvstore_handle
    _kvstore_handle = handle


def _trace() -> dict:
    """The Chrome trace of every event recorded since the last finished dump."""
    names = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": category}}
        for category, pid in _category_pids.items()
    ]
    return {"traceEvents": names + list(_events), "displayTimeUnit": "ms"}


def _write_trace() -> None:
    text = json.dumps(_trace(), indent=1)
    write_atomic(_config["filename"], [text.encode()], MXNetError)


def dump(finished: bool = True, profile_process: str = "worker") -> None:
    """Write the trace to the configured filename (atomically). With finished=True the recorded events
    are dropped and dumping stops until the next set_state('run'), as in MXNet."""
    global _output_enabled
    _check_process(profile_process, "dump")
    with _LOCK:
        if not _output_enabled:
            raise MXNetError(
                "profiler.dump: the profiler has not run since its last finished dump; "
                "call set_config(...) and set_state('run') first"
            )
        _write_trace()
        if finished is True:
            _events.clear()
            _category_pids.clear()
            _output_enabled = False


def dump_profile() -> None:
    """Deprecated form of dump(True)."""
    warnings.warn("profiler.dump_profile() is deprecated; use profiler.dump()", stacklevel=2)
    dump(True)


# -- aggregate statistics ---------------------------------------------------------------------------

_SORT_KEYS = {
    "avg": lambda stat: stat[1] / stat[0],
    "min": lambda stat: stat[2],
    "max": lambda stat: stat[3],
    "count": lambda stat: stat[0],
}
_TABLE_COLUMNS = ("Total Count", "Time (ms)", "Min Time (ms)", "Max Time (ms)", "Avg Time (ms)")


def _sorted_rows(table: dict, sort_by: str, ascending: bool) -> list[tuple[str, list[float]]]:
    key = _SORT_KEYS[sort_by]
    sign = -1 if ascending else 1
    return sorted(table.items(), key=lambda item: (sign * key(item[1]), item[0]), reverse=True)


def _milliseconds(stat: list[float]) -> tuple[int, float, float, float, float]:
    """(count, total, min, max, average) of one name, times in milliseconds."""
    count, total, low, high = stat
    return int(count), total / 1000, low / 1000, high / 1000, total / count / 1000


def _table(sort_by: str, ascending: bool) -> str:
    lines = ["", "Profile Statistics:", "\tNote the difference in units for different entries."]
    for category, table in _stats.items():
        lines += [category, "================="]
        lines.append("Name".ljust(25) + " ".join(title.rjust(16) for title in _TABLE_COLUMNS))
        lines.append("----".ljust(25) + " ".join(("-" * len(title)).rjust(16) for title in _TABLE_COLUMNS))
        for name, stat in _sorted_rows(table, sort_by, ascending):
            count, *times = _milliseconds(stat)
            lines.append(name.ljust(25) + str(count).rjust(16) + "".join(f" {t:16.4f}" for t in times))
        lines.append("")
    return "\n".join(lines) + "\n"


def _json(sort_by: str, ascending: bool) -> str:
    time_stats = {}
    for category, table in _stats.items():
        rows = {}
        for name, stat in _sorted_rows(table, sort_by, ascending):
            count, total, low, high, average = _milliseconds(stat)
            rows[name] = {"Count": count, "Total": total, "Min": low, "Max": high, "Avg": average}
        time_stats[category] = rows
    return json.dumps({"Time": time_stats, "Memory": {}, "Unit": {"Time": "ms", "Memory": "kb"}}, indent=4)


_FORMATS = {"table": _table, "json": _json}


def dumps(reset: bool = False, format: str = "table", sort_by: str = "avg", ascending: bool = False) -> str:
    """The aggregate statistics (count, total, min, max, average time in ms per name, grouped by
    category) as a table or JSON text, sorted by 'avg', 'min', 'max' or 'count'; '' unless
    set_config(aggregate_stats=True). reset=True clears them afterwards. While dumping is possible,
    the trace file is rewritten first, as MXNet does."""
    if format not in _FORMATS:
        raise ProfilerChoiceError(f"profiler.dumps: format must be 'table' or 'json', not {format!r}")
    if sort_by not in _SORT_KEYS:
        raise ProfilerChoiceError(
            f"profiler.dumps: sort_by must be one of {', '.join(map(repr, _SORT_KEYS))}, not {sort_by!r}"
        )
    with _LOCK:
        if _output_enabled:
            _write_trace()
        if not _config["aggregate_stats"]:
            return ""
        text = _FORMATS[format](sort_by, bool(ascending))
        if reset:
            _stats.clear()
        return text


# -- objects users create ---------------------------------------------------------------------------


class Domain:
    """A named group of tasks, frames, counters and markers: their category in the trace."""

    def __init__(self, name: str):
        self.name = str(name)

    def __str__(self) -> str:
        return self.name

    def new_task(self, name: str) -> Task:
        """A Task of this domain."""
        return Task(self, name)

    def new_frame(self, name: str) -> Frame:
        """A Frame of this domain."""
        return Frame(self, name)

    def new_counter(self, name: str, value=None) -> Counter:
        """A Counter of this domain, set to `value` when one is given."""
        return Counter(self, name, value)

    def new_marker(self, name: str) -> Marker:
        """A Marker of this domain."""
        return Marker(self, name)


class _Span:
    """A named duration: `start()` then `stop()` records one span of `category` (while RUNNING)."""

    def __init__(self, name: str, category: str):
        self.name = str(name)
        self._category = category
        self._start_ns: int | None = None

    def start(self) -> None:
        """Start timing."""
        self._start_ns = time.perf_counter_ns()

    def stop(self) -> None:
        """Stop timing and record the span; MXNetError when it was not started."""
        if self._start_ns is None:
            raise MXNetError(f"profiler {type(self).__name__} {self.name!r}: stop() called before start()")
        start, self._start_ns = self._start_ns, None
        record_event(self.name, self._category, start, time.perf_counter_ns())

    def __str__(self) -> str:
        return self.name


class Task(_Span):
    """A unit of work of a domain, timed by start()/stop(); its spans are aggregated under its name."""

    def __init__(self, domain: Domain, name: str):
        super().__init__(name, domain.name)


class Frame(_Span):
    """A frame of a domain (one iteration, say), timed by start()/stop()."""

    def __init__(self, domain: Domain, name: str):
        super().__init__(name, domain.name)


class Event(_Span):
    """A named span outside any domain (category 'event'), timed by start()/stop()."""

    def __init__(self, name: str):
        super().__init__(name, "event")


class Counter:
    """A value that changes over time; each change is recorded (a Chrome counter event) while RUNNING."""

    def __init__(self, domain: Domain, name: str, value=None):
        self.name = str(name)
        self._domain = domain
        self._value = 0
        if value is not None:
            self.set_value(value)

    def _record(self) -> None:
        _record_instant({"name": self.name, "ph": "C", "args": {self.name: self._value}}, self._domain.name)

    def set_value(self, value) -> None:
        """Set the counter to `value` (an int)."""
        self._value = int(value)
        self._record()

    def increment(self, delta=1) -> None:
        """Add `delta` to the counter."""
        self.set_value(self._value + int(delta))

    def decrement(self, delta=1) -> None:
        """Subtract `delta` from the counter."""
        self.set_value(self._value - int(delta))

    def __iadd__(self, delta) -> Counter:
        self.increment(delta)
        return self

    def __isub__(self, delta) -> Counter:
        self.decrement(delta)
        return self

    def __str__(self) -> str:
        return self.name


# marker scope -> the Chrome instant event's scope letter
_MARKER_SCOPES = {"global": "g", "process": "p", "thread": "t", "task": "t", "marker": "t"}


class Marker:
    """An instant in time of a domain, recorded by `mark()` while RUNNING."""

    def __init__(self, domain: Domain, name: str):
        self.name = str(name)
        self.domain = domain

    def mark(self, scope: str = "process") -> None:
        """Record the marker now; scope is 'global', 'process', 'thread', 'task' or 'marker'."""
        if scope not in _MARKER_SCOPES:
            scopes = ", ".join(map(repr, _MARKER_SCOPES))
            raise MXNetError(f"profiler Marker {self.name!r}: scope must be one of {scopes}, not {scope!r}")
        _record_instant({"name": self.name, "ph": "i", "s": _MARKER_SCOPES[scope]}, self.domain.name)


# -- process exit -----------------------------------------------------------------------------------


def _dump_at_exit() -> None:
    """MXNet writes the trace when the process ends if it was not dumped since the profiler last ran."""
    if _output_enabled:
        try:
            dump(True)
        except MXNetError as err:
            print(f"ember.profiler: could not write the trace at exit: {err}", file=sys.stderr)


atexit.register(_dump_at_exit)


def _reset() -> None:
    """Back to the state at import: stopped, default configuration, nothing recorded (for tests)."""
    global _config, _state, _paused, _output_enabled
    with _LOCK:
        _config = {key: default for key, (default, _) in _CONFIG_FIELDS.items()}
        _state, _paused, _output_enabled = "stop", False, False
        _events.clear()
        _category_pids.clear()
        _stats.clear()
        _update_running()


__all__ = [
    "Counter",
    "Domain",
    "Event",
    "Frame",
    "Marker",
    "RUNNING",
    "Task",
    "dump",
    "dump_profile",
    "dumps",
    "pause",
    "profiler_set_config",
    "profiler_set_state",
    "record_event",
    "resume",
    "set_config",
    "set_kvstore_handle",
    "set_state",
]
