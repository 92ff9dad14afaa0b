"""Training statistics summed over batches and, under DDP, over ranks.

In the spirit of icefall's ``MetricsTracker``: a :class:`MetricsTracker` is
a mapping of *sums* (the summed loss, the frame and utterance counts and
each criterion's own statistics, e.g. LF-MMI's ``num``/``den`` or
cross-entropy's ``correct`` frames).  Batches are added up with ``add``/``+``;
:meth:`MetricsTracker.reduce` sums the trackers of all DDP ranks with one
``all_reduce`` of a packed float64 tensor, so that what rank 0 logs covers
every rank's shard; reports divide by the frame count
(:meth:`MetricsTracker.per_frame`).

Without a process group ``reduce`` does nothing and the sums are the very
floats one process added, in the same order: the logs of a one-process run
do not depend on this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
import torch.distributed as dist

#: Sums every tracker has; criterion statistics may not use these names.
BASE_KEYS = ("loss", "frames", "utterances")
#: Sums reported as they are or as a ratio of their own, never divided by the frame count.
NOT_PER_FRAME = BASE_KEYS + ("correct", "unalignable")


class MetricsTracker(Mapping[str, float]):
    """Summed statistics of some batches; a read-only mapping ``name -> sum``.

    Keys keep the order in which they were first added (``loss``, ``frames``,
    ``utterances``, then the criterion's statistics), which is the order the
    logs list them in.
    """

    def __init__(self, sums: Mapping[str, float] | None = None):
        self._sums: dict[str, float] = dict(sums or {})

    @classmethod
    def of_batch(cls, loss: float, frames: int, utterances: int, stats: Mapping[str, float]) -> MetricsTracker:
        """One batch: its summed loss, the frames it covers, its utterances and the criterion's stats."""
        clash = sorted(set(stats) & set(BASE_KEYS))
        if clash:
            raise ValueError(f"criterion statistics may not be named {clash}: the tracker's own sums")
        return cls({"loss": loss, "frames": frames, "utterances": utterances, **stats})

    # -- mapping -----------------------------------------------------------
    def __getitem__(self, key: str) -> float:
        return self._sums[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sums)

    def __len__(self) -> int:
        return len(self._sums)

    def __repr__(self) -> str:
        return f"MetricsTracker({self._sums!r})"

    def as_dict(self) -> dict[str, float]:
        """The sums as a plain dict (for checkpoints: plain types load with ``weights_only=True``)."""
        return {k: float(v) for k, v in self._sums.items()}

    # -- summing -----------------------------------------------------------
    def add(self, other: Mapping[str, float]) -> MetricsTracker:
        """Adds ``other``'s sums into this tracker (in place); returns ``self``.

        A key seen for the first time starts at 0.0, so one tracker added to
        an empty one gives back its own values exactly.
        """
        for k, v in other.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        return self

    def __iadd__(self, other: Mapping[str, float]) -> MetricsTracker:
        return self.add(other)

    def __add__(self, other: Mapping[str, float]) -> MetricsTracker:
        return MetricsTracker(self._sums).add(other)

    def reduce(self, device: torch.device | str = "cpu") -> None:
        """Replaces every sum by its sum over the ranks of the default process group.

        One ``all_reduce`` (SUM) of the sums packed into a float64 tensor on
        ``device`` (the CPU for gloo, the rank's GPU for NCCL); float64 holds
        the counts exactly.  The key lists are gathered first, so a rank that
        saw a statistic no other rank saw (or no batch at all) still lines up.
        A no-op when no process group is initialized or it has one rank.
        Every rank must call it, at the same point, or the others wait forever.
        """
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        keys = self._keys_of_all_ranks()
        packed = torch.tensor([float(self._sums.get(k, 0.0)) for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        self._sums = dict(zip(keys, packed.cpu().tolist()))

    def _keys_of_all_ranks(self) -> list[str]:
        """Union of every rank's keys, in rank order then first-seen order (the same list on every rank)."""
        gathered: list[list[str] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, list(self._sums))
        keys: list[str] = []
        for rank_keys in gathered:
            keys += [k for k in rank_keys or [] if k not in keys]
        return keys

    # -- reports -----------------------------------------------------------
    @property
    def frames(self) -> float:
        """Frames the summed loss covers (0 when nothing was added)."""
        return self._sums.get("frames", 0)

    def per_frame(self) -> dict[str, float]:
        """The report: ``loss / frames``, ``frame_acc = correct / frames`` when the criterion
        counts correct frames, and every other criterion statistic divided by ``frames``.

        Statistics listed in :data:`NOT_PER_FRAME` are left out (``unalignable``
        is a count: see :meth:`unalignable`).
        """
        frames = max(1, self.frames)
        result = {"loss": self._sums.get("loss", 0.0) / frames}
        if "correct" in self._sums:
            result["frame_acc"] = self._sums["correct"] / frames
        result.update(self.criterion_per_frame())
        return result

    def criterion_per_frame(self) -> dict[str, float]:
        """The criterion's own statistics other than counts (e.g. LF-MMI's num, den), per frame."""
        frames = max(1, self.frames)
        return {k: v / frames for k, v in self._sums.items() if k not in NOT_PER_FRAME}

    @property
    def unalignable(self) -> int:
        """Utterances dropped as too short for their transcript."""
        return int(self._sums.get("unalignable", 0))


def per_frame_stats(stats: Mapping[str, float], frames: int) -> dict[str, float]:
    """Summed criterion stats other than counts (e.g. LF-MMI's num, den) of one batch, per frame."""
    return {k: v / max(1, frames) for k, v in stats.items() if k not in NOT_PER_FRAME}


def epoch_message(epoch: int, train: MetricsTracker, valid: Mapping[str, float]) -> str:
    """The epoch line of the training log, e.g.
    ``epoch 3: train loss 0.4210, train frame acc 0.871, valid loss 0.5012, valid frame_acc 0.842``.

    ``valid`` is the validation report (:meth:`MetricsTracker.per_frame`, or
    empty without validation data).
    """
    report = train.per_frame()
    msg = f"epoch {epoch}: train loss {report['loss']:.4f}"
    if "frame_acc" in report:
        msg += f", train frame acc {report['frame_acc']:.3f}"
    extra = train.criterion_per_frame()
    if extra:
        msg += ", train " + ", ".join(f"{k} {v:.4f}" for k, v in extra.items())
    if valid:
        msg += ", valid " + ", ".join(f"{k} {v:.4f}" for k, v in valid.items())
    if train.unalignable:
        msg += f", {train.unalignable} utterances too short for their transcript"
    return msg
