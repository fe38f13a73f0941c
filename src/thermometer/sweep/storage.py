"""Where a study is kept, shared by its workers: a database with heartbeats, and which of the grid's points are taken.

A SQLite file by default (`lightning_logs/<sweep>/optuna.db`), or any database URL Optuna takes: a stopped sweep
resumes where it stopped, and several workers (processes, or machines sharing a database URL) share it.
"""

from __future__ import annotations

import fcntl
import itertools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from thermometer.errors import UsageError

HEARTBEAT_S = 10
"""Seconds between a running trial's heartbeats; a trial silent for 3 (its worker was killed) is retried."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def open_study(
    name: str, url: str, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    """The study `name` in the database `url`, created by the first worker, with a killed worker's trial requeued."""
    study = optuna.create_study(
        study_name=name, storage=storage_for(url), sampler=sampler, pruner=pruner, load_if_exists=True
    )
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9, as heartbeats are
        warnings.filterwarnings("ignore", message=r".*fail_stale_trials is experimental", category=ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def storage_for(url: str) -> RDBStorage:
    """The study's database, with heartbeats: a trial of a killed worker is failed after 3 silent beats and retried."""
    database = sqlite_file(url)
    if database is None:
        return heartbeat_storage(url)
    database.parent.mkdir(parents=True, exist_ok=True)
    # Workers started at the same moment would each create the tables (Optuna does not guard that step): one at a
    # time, and the next finds them made.
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return heartbeat_storage(url)


def check_storage(url: str) -> None:
    """Refuse, before anything is written, a database URL that cannot be opened: its form, its driver, a file.

    Nothing connects here: a server that cannot be reached is said when the study opens.
    """
    example = "e.g. sqlite:///lightning_logs/<name>/optuna.db"
    try:
        engine = sqlalchemy.create_engine(url)  # reads the URL and loads its driver
    except (SQLAlchemyError, ImportError, ValueError, TypeError) as error:
        raise UsageError(f"--storage {url}: {str(error).splitlines()[0]}; {example}.") from None
    engine.dispose()
    if sqlalchemy.engine.make_url(url).get_backend_name() == "sqlite" and sqlite_file(url) is None:
        raise UsageError(
            f"--storage {url}: a database in memory ends with the process, and no other worker can join it or resume "
            f"it; name a file, {example}."
        )
    path = sqlite_file(url)
    if path is None:
        return
    if path.is_dir() or any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise UsageError(f"--storage {url}: {path} is a directory or under a file; name a file, {example}.")
    if path.is_file() and path.stat().st_size and not path.read_bytes()[:16] == b"SQLite format 3\x00":
        raise UsageError(f"--storage {url}: {path} is not a SQLite database; name another file, {example}.")


def sqlite_file(url: str) -> Path | None:
    """The SQLite file of a database URL; None for another database, or one in memory."""
    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def heartbeat_storage(url: str) -> RDBStorage:
    """`RDBStorage` of `url`, or one line saying why it cannot be opened."""
    with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8; the pinned version fixes them
        warnings.filterwarnings(
            "ignore", message=r"RetryHeartbeatStaleTrialCallback is experimental", category=ExperimentalWarning
        )
        warnings.filterwarnings(
            "ignore",
            message=r"Argument ``(heartbeat_interval|grace_period|heartbeat_stale_trial_callback)``",
            category=ExperimentalWarning,
        )
        try:
            return RDBStorage(
                url,
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=3 * HEARTBEAT_S,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
        except (SQLAlchemyError, ImportError, ValueError) as error:  # a URL it cannot parse, a driver not installed
            reason = str(error).splitlines()[0]
            raise UsageError(f"--storage {url}: {reason}; e.g. sqlite:///lightning_logs/<name>/optuna.db.") from None


class GridTaken:
    """Stops a worker once every point of the grid is finished or running in another worker, and none waits.

    Optuna's grid sampler would rather run a point that another worker is still running a second time.
    """

    def __init__(self, points: dict[str, list[Any]]) -> None:
        self.options = list(points)
        self.points = set(itertools.product(*points.values()))

    def taken(self, study: optuna.Study, states: tuple[TrialState, ...]) -> set[tuple[Any, ...]]:
        """The points of the trials in these states."""
        trials = study.get_trials(deepcopy=False, states=states)
        return {tuple(t.params.get(option) for option in self.options) for t in trials}

    def left(self, study: optuna.Study) -> int:
        """How many points no trial has finished or is running."""
        return len(self.points - self.taken(study, (*FINISHED, TrialState.RUNNING)))

    def retry_failed(self, study: optuna.Study) -> None:
        """Put back on the queue each point whose trial failed (a signal, a refused value) and none has finished since.

        The grid sampler counts a failed trial's point as visited; a retry keeps the point and runs it again.
        """
        pending = self.taken(study, (*FINISHED, TrialState.RUNNING, TrialState.WAITING))
        for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            point = tuple(trial.params.get(option) for option in self.options)
            if point in self.points and point not in pending:
                with warnings.catch_warnings():  # "experimental" since Optuna 2.8; the pinned version fixes it
                    warnings.filterwarnings("ignore", message="RetryHeartbeat", category=ExperimentalWarning)
                    RetryHeartbeatStaleTrialCallback(max_retry=None)(study, trial)
                pending.add(point)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting and self.left(study) == 0:
            study.stop()


class SeededByTrial(BaseSampler):
    """A sampler made afresh for each trial, seeded by `seed` + the trial's number.

    Workers started with one seed would each draw the same sequence of points, the same point at the same moment.
    A trial's number is its own in the study (the database gives it out), so each trial draws differently, and a
    worker alone draws the same points every time.

    Args:
        make: the sampler with a given seed, e.g. `lambda seed: TPESampler(seed=seed)`.
        seed: the sweep's seed.
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self.make, self.seed = make, seed
        self.sampler = make(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler = self.make((self.seed + trial.number) % 2**32)  # numpy takes seeds below 2**32
        self.sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self.sampler.after_trial(study, trial, state, values)
