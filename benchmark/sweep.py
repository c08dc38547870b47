"""Sweeps: a grid of datasets x methods x policies x seeds x test settings, run in parallel, resumably.

A grid trains **once per (dataset, method, training policy, seed)** and evaluates that checkpoint on every
test setting of the grid; only the ``matched`` policy trains one model per setting, as its papers do (P2: one
model per rate). Grids come from flags or from a YAML file (or a packaged preset, ``quick``, ``synthetic``,
``mosi``, ...)::

    description: ...
    grid:                       # one mapping, or a list of them (their runs are merged)
      methods: all              # names or all
      datasets: [synthetic]
      protocols: [intra, inter] # optional: keeps only these protocols' settings
      rates: {intra: "0.0:0.9:0.1", inter: "0.0:0.6:0.1"}   # or one spec for every protocol
      conditions: [t, a, v, ta, tv, av, tav]                 # settings of the inter protocol
      seeds: [1111, 1112, 1113]                              # or "1111:1113"
      train_policy: paper       # a policy name, a list, or paper (each method's own)
    overrides: [trainer.max_epochs=5]                        # key=value for every run

Resuming is the runner's: every run has a key (a hash of everything that determines it), a finished run is
reused, and a run left ``running`` by a crash (even ``kill -9`` of the whole sweep) is redone from scratch;
results are written atomically, so a restarted sweep ends with exactly the files of an uninterrupted one. A
failing run leaves rows with its error; the sweep goes on and reports the failures at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from omegaconf import OmegaConf

from msabench.errors import ConfigError, MSABenchError, UnknownNameError
from msabench.protocols.settings import ALL_CONDITIONS, MAX_INTER_RATE, Setting, normalize_condition
from msabench.results import atomic_write_text

GRID_KEYS: Final[tuple[str, ...]] = (
    "methods",
    "datasets",
    "protocols",
    "rates",
    "conditions",
    "seeds",
    "train_policy",
)
FILE_KEYS: Final[tuple[str, ...]] = ("description", "grid", "overrides", "workers", "output")
RATE_PROTOCOLS: Final[tuple[str, ...]] = ("intra", "inter")
STATE_DIR: Final[str] = ".sweeps"
LOCK_FILE: Final[str] = ".sweep.lock"
# A job whose worker process dies (segfault, out of memory) is retried once in a fresh pool: the death may
# have been another job's, since a dead worker breaks every job in flight.
MAX_ATTEMPTS: Final[int] = 2


# ---------------------------------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class Grid:
    """One block of a sweep: every combination of its leaves.

    Attributes:
        methods: method names, or ``("all",)``.
        datasets: dataset names.
        rates: per rate protocol (``intra``, ``inter``), its rates.
        conditions: availability conditions (settings of the ``inter`` protocol), in (t, a, v) letters.
        seeds: training seeds; empty for the config's seed.
        train_policies: policy names or ``paper`` (each method's own).
    """

    methods: tuple[str, ...] = ("all",)
    datasets: tuple[str, ...] = ("synthetic",)
    rates: tuple[tuple[str, tuple[float, ...]], ...] = ()
    conditions: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    train_policies: tuple[str, ...] = ("paper",)

    def settings(self) -> list[Setting]:
        """The test settings, intra rates first, then inter rates, then the conditions."""
        out: list[Setting] = []
        for protocol, rates in self.rates:
            out += [Setting(protocol, rate=r) for r in rates]  # type: ignore[arg-type]
        out += [Setting("condition", condition=c) for c in self.conditions]
        return out


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: its grids and the overrides every run gets."""

    grids: tuple[Grid, ...]
    overrides: tuple[str, ...] = ()
    name: str = "sweep"
    workers: int | None = None
    output: str | None = None


def parse_rates(value: Any) -> tuple[float, ...]:
    """``"0.0:0.9:0.1"`` (start:stop:step, stop included), ``"0,0.3,0.5"``, a number or a list of them."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, str):
        text = value.strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ConfigError(f"rate range '{value}' must be start:stop:step, e.g. 0.0:0.9:0.1")
            start, stop, step = (_number(p, value) for p in parts)
            if step <= 0 or stop < start:
                raise ConfigError(f"rate range '{value}' needs step > 0 and stop >= start")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            return tuple(round(start + i * step, 10) for i in range(count))
        return tuple(_number(p, value) for p in text.split(",") if p.strip())
    if isinstance(value, Sequence):
        return tuple(r for item in value for r in parse_rates(item))
    raise ConfigError(f"cannot read rates from {value!r}: use 0.0:0.9:0.1 or a list such as 0,0.3,0.5")


def _number(text: str, whole: Any) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"'{text}' in '{whole}' is not a number") from None


def parse_seeds(value: Any) -> tuple[int, ...]:
    """``"1111:1113"`` (inclusive), ``"1111,1112"``, an integer or a list of them."""
    if isinstance(value, bool):
        raise ConfigError(f"cannot read seeds from {value!r}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        text = value.strip()
        try:
            if ":" in text:
                start, stop = (int(p) for p in text.split(":"))
                return tuple(range(start, stop + 1))
            return tuple(int(p) for p in text.split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"cannot read seeds from '{value}': use 1111,1112,1113 or 1111:1113") from None
    if isinstance(value, Sequence):
        return tuple(s for item in value for s in parse_seeds(item))
    raise ConfigError(f"cannot read seeds from {value!r}: use 1111,1112,1113 or 1111:1113")


def parse_names(value: Any) -> tuple[str, ...]:
    """``"a,b"`` or a list of names, lower-cased."""
    if isinstance(value, str):
        return tuple(p.strip().lower() for p in value.split(",") if p.strip())
    if isinstance(value, Sequence):
        return tuple(n for item in value for n in parse_names(item))
    raise ConfigError(f"cannot read names from {value!r}: use a comma-separated list")


def grid_from_leaves(leaves: Mapping[str, Any], where: str = "the grid") -> Grid:
    """A :class:`Grid` from ``grid:`` leaves (YAML or flags); unknown leaves are errors."""
    for key in leaves:
        if key not in GRID_KEYS:
            raise UnknownNameError("grid key", str(key), GRID_KEYS)
    protocols = parse_names(leaves["protocols"]) if leaves.get("protocols") is not None else None
    for p in protocols or ():
        if p not in RATE_PROTOCOLS:
            raise UnknownNameError("protocol", p, RATE_PROTOCOLS)
    raw_rates = leaves.get("rates")
    conditions = leaves.get("conditions")
    if isinstance(conditions, str) and conditions.strip().lower() == "all":
        condition_list: tuple[str, ...] = ALL_CONDITIONS
    else:
        condition_list = tuple(dict.fromkeys(normalize_condition(c) for c in parse_names(conditions or ())))
    if isinstance(raw_rates, Mapping):  # per protocol: {intra: 0:0.9:0.1, inter: 0:0.6:0.1}
        rates = {str(k).lower(): parse_rates(v) for k, v in raw_rates.items()}
        for p in rates:
            if p not in RATE_PROTOCOLS:
                raise UnknownNameError("protocol", p, RATE_PROTOCOLS)
        implied = tuple(rates)
    else:  # one spec for every listed protocol (intra when none is listed)
        targets = protocols if protocols is not None else ("intra",)
        rates = {p: parse_rates(raw_rates) for p in targets} if raw_rates is not None else {}
        implied = tuple(rates)
    if protocols is not None:
        active = protocols
    else:
        active = implied + (("inter",) if condition_list and "inter" not in implied else ())
    if condition_list and "inter" not in active:
        raise ConfigError(f"conditions in {where} are settings of the inter protocol: add inter to protocols")
    selected = tuple((p, tuple(sorted(set(rates[p])))) for p in RATE_PROTOCOLS if p in active and p in rates)
    for p, values in selected:
        bad = [r for r in values if not 0.0 <= r <= (MAX_INTER_RATE if p == "inter" else 1.0) + 1e-9]
        if bad:
            hint = (
                " (at most 2/3: every sample keeps a modality); give per-protocol rates, e.g. "
                "--rates intra=0:0.9:0.1 --rates inter=0:0.6:0.1"
                if p == "inter"
                else ""
            )
            raise ConfigError(f"rate {bad[0]:g} is out of range for {p} in {where}{hint}")
    for p in active:
        if p not in dict(selected) and not (p == "inter" and condition_list):
            raise ConfigError(
                f"protocol {p} in {where} has no rates: give rates (e.g. --rates {p}=0:0.6:0.1)"
            )
    conditions_out = condition_list if "inter" in active else ()
    if not selected and not conditions_out:
        raise ConfigError(f"{where} has no test setting: give rates and/or conditions (or --config quick)")
    policies = leaves.get("train_policy", "paper")
    return Grid(
        methods=parse_names(leaves.get("methods", "all")) or ("all",),
        datasets=parse_names(leaves.get("datasets", "synthetic")),
        rates=selected,
        conditions=conditions_out,
        seeds=parse_seeds(leaves["seeds"]) if leaves.get("seeds") is not None else (),
        train_policies=parse_names(policies) or ("paper",),
    )


def presets() -> list[str]:
    """Names of the packaged sweep presets (``benchmark/sweeps/*.yaml``)."""
    folder = resources.files("msabench").joinpath("sweeps")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_sweep_file(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """The YAML of a preset name or a file path, and the sweep's name."""
    path = Path(name_or_path)
    if path.exists():
        text, name = path.read_text(), path.stem
    else:
        # a bare name, or `sweeps/quick.yaml` as the docs write it: the packaged preset
        name = (
            path.stem.strip().lower()
            if path.suffix in (".yaml", ".yml")
            else str(name_or_path).strip().lower()
        )
        if name not in presets():
            if path.suffix in (".yaml", ".yml"):
                raise ConfigError(f"sweep file '{path}' does not exist (presets: {', '.join(presets())})")
            raise UnknownNameError("sweep preset", name, presets())
        text = resources.files("msabench").joinpath(f"sweeps/{name}.yaml").read_text()
    data = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    if not isinstance(data, dict) or "grid" not in data:
        raise ConfigError(
            f"sweep file '{name_or_path}' needs a top-level `grid:` mapping (or a list of them)"
        )
    for key in data:
        if key not in FILE_KEYS:
            raise UnknownNameError("sweep file key", str(key), FILE_KEYS)
    return data, name


def build_spec(
    config: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> SweepSpec:
    """A sweep from a preset or YAML file and/or flags.

    A flag replaces that leaf in every grid of the file; trailing ``overrides`` are appended to the file's.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    data: dict[str, Any] = {"grid": {}}
    name = "sweep"
    if config is not None:
        data, name = load_sweep_file(config)
    blocks = data["grid"] if isinstance(data["grid"], list) else [data["grid"]]
    grids = tuple(
        grid_from_leaves(
            {**(block or {}), **flags}, where=f"grid {i + 1} of {name}" if len(blocks) > 1 else name
        )
        for i, block in enumerate(blocks)
    )
    file_overrides = [str(o) for o in data.get("overrides") or ()]
    workers = data.get("workers")
    return SweepSpec(
        grids, (*file_overrides, *overrides), name, int(workers) if workers else None, data.get("output")
    )


# ---------------------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One run of a sweep: one checkpoint, evaluated on ``settings``."""

    dataset: str
    method: str
    train_policy: str
    seed: int
    settings: tuple[Setting, ...]
    overrides: tuple[str, ...] = ()
    extra_blocks: tuple[str, ...] = ()
    data_root: str | None = None

    @property
    def timing_group(self) -> str:
        """What predicts this job's wall time: its dataset, method and policy (matched rates cost alike)."""
        return f"{self.dataset} {self.method} {self.train_policy}"

    @property
    def label(self) -> str:
        """Readable name: dataset, method, policy (with its setting when matched) and seed."""
        matched = f" {self.settings[0].name}" if self.train_policy == "matched" else ""
        return f"{self.dataset} {self.method} {self.train_policy}{matched} s{self.seed}"

    def request(self, output: Path, wandb: bool | None = None, sweep_id: str | None = None) -> Any:
        """The runner's request for this job."""
        from msabench.runner import RunRequest

        return RunRequest(
            method=self.method,
            settings=list(self.settings),
            dataset=self.dataset,
            train_policy=self.train_policy,
            seed=self.seed,
            data_root=self.data_root,
            overrides=list(self.overrides),
            output=Path(output),
            extra_blocks=tuple(self.extra_blocks),
            wandb=wandb,
            sweep_id=sweep_id,
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (the sweep's manifest and id)."""
        return {
            "dataset": self.dataset,
            "method": self.method,
            "train_policy": self.train_policy,
            "seed": self.seed,
            "settings": [s.name for s in self.settings],
            "overrides": list(self.overrides),
            "extra_blocks": list(self.extra_blocks),
        }


def expand(spec: SweepSpec, extra_blocks: Sequence[str] = (), data_root: str | None = None) -> list[Job]:
    """The runs of a sweep, ordered seed by seed (a partial sweep holds whole seeds first).

    ``paper`` resolves to each method's own policy (from its composed config, so dataset blocks and overrides
    count); ``matched`` gives one job per setting, any other policy one job with every setting. Jobs with the
    same (dataset, method, policy, seed) from several grids are merged, so each checkpoint is trained once.
    Unknown methods, datasets and override keys fail here, before anything runs.
    """
    from msabench import config as config_lib
    from msabench.datamodules import DATASETS
    from msabench.models import canonical_name, names
    from msabench.models import get as get_method
    from msabench.runner import dataset_family, resolve_policy_name

    for grid in spec.grids:
        for dataset in grid.datasets:
            if dataset not in DATASETS:
                raise UnknownNameError("dataset", dataset, DATASETS)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    seed_rank: dict[int, int] = {}
    for grid in spec.grids:
        methods = names() if "all" in grid.methods else [canonical_name(m) for m in grid.methods]
        settings = grid.settings()
        for dataset in grid.datasets:
            for method in methods:
                method_cls = get_method(method)
                cfg = config_lib.compose(
                    method_cls.method_name,
                    dataset,
                    dataset_family(dataset),
                    {},
                    list(spec.overrides),
                    extra_blocks,
                )
                for policy in grid.train_policies:
                    resolved = resolve_policy_name(policy, method_cls, cfg)
                    for seed in grid.seeds or (int(cfg.seed),):
                        seed_rank.setdefault(seed, len(seed_rank))
                        groups = [[s] for s in settings] if resolved == "matched" else [settings]
                        for group in groups:
                            key = (
                                dataset,
                                method_cls.method_name,
                                resolved,
                                seed,
                                group[0].name if resolved == "matched" else None,
                            )
                            entry = merged.setdefault(key, {"settings": {}})
                            entry["settings"].update({s.name: s for s in group})
    jobs = [
        Job(
            dataset=k[0],
            method=k[1],
            train_policy=k[2],
            seed=k[3],
            settings=tuple(sorted(v["settings"].values(), key=_setting_order)),
            overrides=tuple(spec.overrides),
            extra_blocks=tuple(extra_blocks),
            data_root=data_root,
        )
        for k, v in merged.items()
    ]
    return sorted(
        jobs,
        key=lambda j: (seed_rank[j.seed], j.dataset, j.method, j.train_policy, _setting_order(j.settings[0])),
    )


def _setting_order(setting: Setting) -> tuple[int, float, int]:
    rank = {"intra": 0, "inter": 1, "condition": 2}.get(setting.protocol, 3)
    condition = ALL_CONDITIONS.index(setting.condition) if setting.condition in ALL_CONDITIONS else 99
    return rank, setting.rate if setting.rate is not None else -1.0, condition


def sweep_id(name: str, jobs: Sequence[Job]) -> str:
    """A stable id of a sweep (its name and a hash of its runs): the W&B group and the state folder."""
    digest = hashlib.sha256(json.dumps([j.describe() for j in jobs], sort_keys=True).encode()).hexdigest()
    return f"{name}-{digest[:8]}"


# ---------------------------------------------------------------------------------------------------- running
@dataclass
class Outcome:
    """What became of one job."""

    index: int
    label: str
    status: Literal["finished", "reused", "failed"]
    run_dir: str | None = None
    error: str | None = None
    wall_s: float = 0.0
    log: str | None = None
    recorded_wall_s: float | None = None
    """For a reused run: the training time its run directory recorded (what the ETA learns from)."""


@dataclass
class SweepReport:
    """The outcomes of a sweep, in job order."""

    sweep_id: str
    outcomes: list[Outcome]
    elapsed_s: float
    workers: int
    threads: int

    @property
    def failures(self) -> list[Outcome]:
        """The failed jobs."""
        return [o for o in self.outcomes if o.status == "failed"]


def run_job(
    job: Job,
    output: str,
    wandb: bool | None,
    group: str | None,
    threads: int,
    log: str | None,
    index: int = 0,
) -> Outcome:
    """Run one job (in a worker process): train or reuse, never raise; output goes to ``log`` when given."""
    import torch

    from msabench.runner import execute

    torch.set_num_threads(max(1, threads))
    started = time.time()
    with _redirect_output(log):
        try:
            frame = execute(job.request(Path(output), wandb=wandb, sweep_id=group))
        except (
            Exception
        ) as err:  # a failed run must not stop the sweep: its rows and error.log hold the details
            traceback.print_exc()
            message = (str(err) if isinstance(err, MSABenchError) else f"{type(err).__name__}: {err}").strip()
            error = message.splitlines()[0] if message else type(err).__name__
            return Outcome(
                index, job.label, "failed", _run_dir_of(job, output), error, time.time() - started, log
            )
        finally:
            if "msabench.wandb_logging" in sys.modules:
                sys.modules["msabench.wandb_logging"].finish_leftovers()
    status: Literal["finished", "reused"] = "reused" if frame.attrs.get("cached") else "finished"
    return Outcome(
        index,
        job.label,
        status,
        frame.attrs.get("run_dir"),
        None,
        time.time() - started,
        log,
        frame.attrs.get("wall_time_s"),
    )


def _run_dir_of(job: Job, output: str) -> str | None:
    """The run directory a failed job wrote, if it got that far (status ``failed`` under ``output``)."""
    from msabench import results as store

    runs = store.run_statuses(Path(output)) if Path(output).exists() else None
    if runs is None or runs.empty:
        return None
    prefix = f"{job.dataset}__{job.method}__{job.train_policy}"
    if job.train_policy == "matched":
        prefix += f"__{job.settings[0].name.replace(':', '-')}"
    prefix += f"__s{job.seed}__"
    hits = [d for d in runs["run_dir"] if Path(d).name.startswith(prefix)]
    return hits[-1] if hits else None


@contextlib.contextmanager
def _redirect_output(path: str | None) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors included) to ``path`` for the duration."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _init_worker(threads: int) -> None:
    """Worker start: its share of the cores, no SIGINT (the parent stops it), and death with the parent."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # a worker orphaned by kill -9 of the sweep must not go on writing
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def process_pool(workers: int, threads: int) -> Executor:
    """The default executor: ``workers`` spawned processes, ``threads`` torch threads each."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads,)
    )


class InlineExecutor(Executor):
    """Runs each job at submission in this process (``--workers 0``: debugging, tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # noqa: D102
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(err)
        return future


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Progress:
    """Runs done / running / failed / left, elapsed and estimated time; a live line on a terminal.

    The estimate learns one wall time per (dataset, method, policy) from the runs this sweep trained and the
    recorded times of those it reused, because one method's run can cost ten times another's.
    """

    groups: Sequence[str]
    """Per job index: the group whose wall times predict that job's (``Job.timing_group``)."""
    workers: int
    stream: TextIO | None = None
    started: float = field(default_factory=time.time)
    trained: int = 0
    reused: int = 0
    failed: int = 0
    running_since: dict[int, float] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    walls: dict[str, list[float]] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        """Whether the status line is redrawn in place."""
        return bool(self.stream is not None and getattr(self.stream, "isatty", lambda: False)())

    @property
    def total(self) -> int:
        """Jobs in the sweep."""
        return len(self.groups)

    @property
    def running(self) -> int:
        """Jobs in flight."""
        return len(self.running_since)

    @property
    def left(self) -> int:
        """Jobs neither done nor running."""
        return self.total - len(self.done) - self.running

    def start(self, index: int) -> None:
        """Job ``index`` went to a worker."""
        self.running_since[index] = time.time()

    def requeue(self, index: int) -> None:
        """Job ``index`` goes back to the queue (its worker died)."""
        self.running_since.pop(index, None)

    def finish(self, index: int, status: str, wall_s: float | None) -> None:
        """Job ``index`` ended; ``wall_s`` is its training time (recorded time for a reused run), if any."""
        self.running_since.pop(index, None)
        self.done.add(index)
        match status:
            case "finished":
                self.trained += 1
            case "reused":
                self.reused += 1
            case _:
                self.failed += 1
        if wall_s is not None and status != "failed":
            self.walls.setdefault(self.groups[index], []).append(float(wall_s))

    def eta_s(self) -> float | None:
        """Estimated seconds to the end: each open job's expected wall time, shared among the workers.

        A job's expectation is the mean wall time of its group, else of every timed run; a running job
        counts what it has left of that (never below zero).
        """
        every = [w for walls in self.walls.values() for w in walls]
        if not every:
            return None
        overall = sum(every) / len(every)

        def expected(index: int) -> float:
            walls = self.walls.get(self.groups[index])
            return sum(walls) / len(walls) if walls else overall

        now = time.time()
        queued = (i for i in range(self.total) if i not in self.done and i not in self.running_since)
        work = sum(expected(i) for i in queued)
        work += sum(max(expected(i) - (now - t0), 0.0) for i, t0 in self.running_since.items())
        return work / max(self.workers, 1)

    def line(self) -> str:
        """The status line."""
        eta = self.eta_s()
        done = self.trained + self.reused
        return (
            f"[{_duration(time.time() - self.started)}] {done}/{self.total} done ({self.reused} reused) · "
            f"{self.running} running · {self.failed} failed · {self.left} left · "
            f"ETA {_duration(eta) if eta is not None else '?'}"
        )

    def event(self, text: str) -> None:
        """Print one event line (and redraw the status line on a terminal)."""
        if self.stream is None:
            return
        if self.live:
            self.stream.write(f"\r\x1b[K{text}\n{self.line()}")
        else:
            self.stream.write(f"{text} | {self.line()}\n")
        self.stream.flush()

    def tick(self) -> None:
        """Redraw the status line (terminal only)."""
        if self.live and self.stream is not None:
            self.stream.write(f"\r\x1b[K{self.line()}")
            self.stream.flush()

    def close(self) -> None:
        """End the live line."""
        if self.live and self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


@contextlib.contextmanager
def _sweep_lock(output: Path) -> Iterator[None]:
    """One sweep at a time per output directory (a second one would redo the first one's running runs)."""
    output.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield
        return
    with open(output / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"another sweep is writing to {output}: wait for it to end, or give another --output"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_sweep(
    jobs: Sequence[Job],
    output: Path,
    *,
    workers: int = 1,
    name: str = "sweep",
    wandb: bool | None = None,
    stream: TextIO | None = None,
    executor_factory: Callable[[int, int], Executor] | None = None,
    job_fn: Callable[..., Outcome] = run_job,
) -> SweepReport:
    """Run the jobs, ``workers`` at a time, each in its own process with its share of the cores.

    Args:
        jobs: from :func:`expand`.
        output: the results root (one run directory per job; the sweep's state in ``.sweeps/<id>/``).
        workers: processes at once; 0 runs every job in this process (debugging).
        name: the sweep's name (its id is the name and a hash of its jobs).
        wandb: log each run to W&B (None: the config's ``logging.wandb``).
        stream: where progress goes (``sys.stderr`` from the CLI; None: silent).
        executor_factory: ``(workers, threads) -> Executor``; :func:`process_pool` by default.
        job_fn: runs one job; :func:`run_job` by default.

    Returns:
        The report; the sweep never raises for a failed run.
    """
    output = Path(output)
    group = sweep_id(name, jobs)
    slots = max(workers, 1)
    threads = max(1, available_cores() // slots)
    state = output / STATE_DIR / group
    if executor_factory is None:
        executor_factory = (lambda w, t: InlineExecutor()) if workers == 0 else process_pool
    logs = workers > 0
    progress = Progress([job.timing_group for job in jobs], workers=slots, stream=stream)
    outcomes: dict[int, Outcome] = {}
    attempts = [0] * len(jobs)
    with _sweep_lock(output):
        progress.event(
            f"sweep {group}: {len(jobs)} runs, {slots} at a time, {threads} thread(s) each -> {output}"
        )
        pending = deque(range(len(jobs)))
        executor = executor_factory(workers, threads)
        in_flight: dict[Future, int] = {}
        try:
            while pending or in_flight:
                while pending and len(in_flight) < slots:
                    index = pending.popleft()
                    attempts[index] += 1
                    log = (
                        str(state / "logs" / f"{index:04d}_{_slug(jobs[index].label)}.log") if logs else None
                    )
                    in_flight[
                        executor.submit(job_fn, jobs[index], str(output), wandb, group, threads, log, index)
                    ] = index
                    progress.start(index)
                done, _ = wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    index = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        _requeue_or_fail(index, jobs, attempts, pending, outcomes, progress)
                        continue
                    except BaseException as err:  # noqa: BLE001 - e.g. a worker's run stopped by SIGTERM
                        # (Lightning raises SystemExit): that run stays `running` and is redone next time;
                        # the sweep goes on with the others.
                        outcome = Outcome(
                            index, jobs[index].label, "failed", None, f"{type(err).__name__}: {err}".strip()
                        )
                    _record(outcome, outcomes, progress)
                changed = bool(done)
                if broken:
                    for future in list(in_flight):  # every job of a broken pool fails; give them another go
                        _requeue_or_fail(in_flight.pop(future), jobs, attempts, pending, outcomes, progress)
                    executor.shutdown(wait=False, cancel_futures=True)
                    executor = executor_factory(workers, threads)
                if changed:
                    _write_manifest(state, group, jobs, outcomes)
                progress.tick()
        except BaseException:
            _stop(executor)
            raise
        finally:
            progress.close()
        executor.shutdown(wait=True)
    ordered = [outcomes[i] for i in range(len(jobs))]
    return SweepReport(group, ordered, time.time() - progress.started, slots, threads)


def _requeue_or_fail(
    index: int,
    jobs: Sequence[Job],
    attempts: list[int],
    pending: deque,
    outcomes: dict[int, Outcome],
    progress: Progress,
) -> None:
    if attempts[index] < MAX_ATTEMPTS:
        progress.requeue(index)
        pending.appendleft(index)
        progress.event(f"retry   {jobs[index].label}: its worker process died")
    else:
        _record(
            Outcome(
                index,
                jobs[index].label,
                "failed",
                None,
                "the worker process died (killed, out of memory or a crash) twice",
            ),
            outcomes,
            progress,
        )


def _record(outcome: Outcome, outcomes: dict[int, Outcome], progress: Progress) -> None:
    outcomes[outcome.index] = outcome
    wall = outcome.recorded_wall_s if outcome.status == "reused" else outcome.wall_s
    progress.finish(outcome.index, outcome.status, wall)
    match outcome.status:
        case "finished":
            progress.event(f"done    {outcome.label} ({_duration(outcome.wall_s)})")
        case "reused":
            progress.event(f"reused  {outcome.label}")
        case _:
            progress.event(f"FAILED  {outcome.label}: {outcome.error}")


def _write_manifest(state: Path, group: str, jobs: Sequence[Job], outcomes: Mapping[int, Outcome]) -> None:
    entries = []
    for i, job in enumerate(jobs):
        outcome = outcomes.get(i)
        entries.append(
            {
                **job.describe(),
                "label": job.label,
                **(
                    {k: v for k, v in asdict(outcome).items() if k not in ("index", "label")}
                    if outcome
                    else {"status": "pending"}
                ),
            }
        )
    atomic_write_text(state / "jobs.json", json.dumps({"sweep_id": group, "jobs": entries}, indent=1))


def _stop(executor: Executor) -> None:
    """Stop at once: cancel what has not started and end the worker processes.

    Their runs stay ``running`` and are redone by the next invocation.
    """
    processes = list((getattr(executor, "_processes", None) or {}).values())  # shutdown clears it
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in text)
