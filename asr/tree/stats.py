"""Tree statistics (Kaldi's ``acc-tree-stats``): one diagonal Gaussian per (context window, pdf class).

Every frame of an alignment belongs to one phone instance and one pdf class
of that phone's HMM.  Its *event* is the window of ``width`` phone ids around
the instance, the modelled phone at ``centre``, plus the pdf class::

    (phone[i - centre], ..., phone[i], ..., phone[i + width - 1 - centre], pdf_class)

Phones outside the utterance are the boundary symbol 0 (``<eps>``, as Kaldi).
Context runs across word boundaries and silence is a phone like any other.

Frame rate.  ``asr align`` writes one pdf id per *network output* frame
(30 ms for AN4's 3x subsampled models), features are at 10 ms.  We stretch
the alignment to the feature rate: output frame ``t`` of a model with
subsampling ``s`` is centred on input frame ``t * s``
(:meth:`asr.models.base.AcousticModel.output_lengths`), so input frame ``i``
takes the label of output frame ``min(round(i / s), T' - 1)``.  Statistics
therefore use every 10 ms frame, and counts (``min_leaf_count``) are in
10 ms frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.config import load_config
from asr.errors import DataDirError
from asr.features.extract import load_feature_config, load_features
from asr.lang.lang_dir import LangDir
from asr.lang.topology import Topology
from asr.training.align import read_alignments
from asr.tree.gaussian import frame_stats

log = logging.getLogger(__name__)

#: Phone id of positions outside the utterance (``<eps>``, Kaldi's 0).
BOUNDARY = 0
#: Kaldi add-deltas defaults: deltas and delta-deltas over +-2 frames.
DELTA_ORDER, DELTA_WINDOW = 2, 2
#: Frames summed per index_add_ call, to bound the float64 temporary.
CHUNK_FRAMES = 65536


@dataclass
class TreeStats:
    """Accumulated statistics, one row per distinct event.

    Attributes:
      contexts: (M, width) int64 phone ids, 0 outside the utterance.
      pdf_classes: (M,) int64 pdf class of the modelled phone's HMM.
      stats: (M, 1 + 2 D) float64 ``[count, sum, sum of squares]``.
      central_position: index of the modelled phone in ``contexts``.
    """

    contexts: torch.Tensor
    pdf_classes: torch.Tensor
    stats: torch.Tensor
    central_position: int

    @property
    def context_width(self) -> int:
        return int(self.contexts.shape[1])

    @property
    def central_phones(self) -> torch.Tensor:
        return self.contexts[:, self.central_position]


def pdf_phone_and_class(lang: LangDir) -> tuple[torch.Tensor, torch.Tensor]:
    """For each pdf id (index; 0 unused), its phone id and pdf class, each (num_pdfs + 1,) int64."""
    table = lang.pdf_table
    phones, classes = [0], [0]
    for j, topo in enumerate(table.topologies):
        phones += [lang.phones[table.phones[j]]] * topo.num_pdf_classes
        classes += list(range(topo.num_pdf_classes))
    return torch.tensor(phones), torch.tensor(classes)


def class_continues(topo: Topology) -> torch.Tensor:
    """Which pdf class may follow which inside one instance of a phone.

    From a state ``k`` the next frame is its self-loop (``loop_k``) or the
    entry of state ``k + 1``.  A frame whose class cannot follow the previous
    one starts a new instance (e.g. class 0 after class 1 in the chain topology).

    Returns:
      (K, K) bool, ``[previous class, next class]``.
    """
    k = topo.num_pdf_classes
    ok = torch.zeros(k, k, dtype=torch.bool)
    for i, state in enumerate(topo.states):
        following = [state.loop] + ([topo.states[i + 1].enter] if i + 1 < len(topo.states) else [])
        for prev in {state.enter, state.loop}:
            ok[prev, following] = True
    return ok


def pdf_continues(lang: LangDir) -> torch.Tensor:
    """(num_pdfs + 1, num_pdfs + 1) bool: pdf ``b`` may follow pdf ``a`` in the same phone instance."""
    table = lang.pdf_table
    n = table.num_pdfs + 1
    ok = torch.zeros(n, n, dtype=torch.bool)
    for j, topo in enumerate(table.topologies):
        first = table.pdf_id(j, 0)
        ids = slice(first, first + topo.num_pdf_classes)
        ok[ids, ids] = class_continues(topo)
    return ok


def phone_instances(pdfs: torch.Tensor, pdf_phone: torch.Tensor, continues: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Splits a frame-level pdf alignment into phone instances.

    Args:
      pdfs: (T,) int64 pdf ids.
      pdf_phone: (num_pdfs + 1,) phone id of each pdf.
      continues: (num_pdfs + 1, num_pdfs + 1) from :func:`pdf_continues`.

    Returns:
      ``(instance_phones, frame_instance)``: (I,) phone id of each instance
      and (T,) the instance of each frame.
    """
    starts = torch.ones(len(pdfs), dtype=torch.bool)
    starts[1:] = ~continues[pdfs[:-1], pdfs[1:]]
    frame_instance = torch.cumsum(starts.long(), 0) - 1
    return pdf_phone[pdfs[starts]], frame_instance


def context_windows(instance_phones: torch.Tensor, width: int, centre: int) -> torch.Tensor:
    """(I, width) phone ids around each instance; :data:`BOUNDARY` past the utterance's ends."""
    padded = torch.cat([
        torch.full((centre,), BOUNDARY, dtype=torch.int64),
        instance_phones,
        torch.full((width - 1 - centre,), BOUNDARY, dtype=torch.int64),
    ])
    return padded.unfold(0, width, 1)


def stretch_to_input_rate(labels: torch.Tensor, num_input_frames: int, subsampling: int) -> torch.Tensor:
    """Input frame ``i`` takes output frame ``min(round(i / s), T' - 1)``'s label (see module docstring).

    Args:
      labels: (T',) per output frame.
      num_input_frames: T.
      subsampling: s.

    Returns:
      (T,) per input frame.
    """
    index = torch.div(torch.arange(num_input_frames) + subsampling // 2, subsampling, rounding_mode="floor")
    return labels[index.clamp(max=len(labels) - 1)]


def delta_filters(order: int = DELTA_ORDER, window: int = DELTA_WINDOW) -> list[torch.Tensor]:
    """Kaldi's delta filters: filter ``k`` (length ``2 k window + 1``) gives the k-th order deltas.

    Filter 1 is ``j / sum_{j=-N..N} j^2`` for ``j = -N..N``; filter ``k`` convolves filter
    ``k - 1`` with filter 1 (Kaldi's ``DeltaFeatures``).
    """
    offsets = torch.arange(-window, window + 1, dtype=torch.float64)
    first = offsets / (offsets * offsets).sum()
    filters = [torch.ones(1, dtype=torch.float64)]
    for _ in range(order):
        prev = filters[-1]
        filters.append(torch.nn.functional.conv1d(
            prev.view(1, 1, -1), first.flip(0).view(1, 1, -1), padding=len(first) - 1
        ).view(-1))
    return filters


def add_deltas(feats: torch.Tensor, order: int = DELTA_ORDER, window: int = DELTA_WINDOW) -> torch.Tensor:
    """Appends deltas up to ``order`` (Kaldi ``add-deltas``; frames past the edges repeat the edge frame).

    Args:
      feats: (T, D).

    Returns:
      (T, D * (order + 1)) float32.
    """
    x = feats.to(torch.float64)
    frames = torch.arange(len(x))
    out = [x]
    for filt in delta_filters(order, window)[1:]:
        half = (len(filt) - 1) // 2
        acc = torch.zeros_like(x)
        for j, weight in enumerate(filt.tolist()):
            if weight != 0.0:
                acc += weight * x[(frames + j - half).clamp(0, len(x) - 1)]
        out.append(acc)
    return torch.cat(out, dim=1).to(torch.float32)


def subsampling_factor(ali_dir: Path, data_dir: Path) -> int:
    """Input frames per alignment frame: the alignment's frame shift over the features'.

    Raises:
      DataDirError: if ``info.yaml`` is missing or the ratio is not a positive integer.
    """
    info_path = ali_dir / "info.yaml"
    if not info_path.is_file():
        raise DataDirError(f"{info_path}: no such file (an 'asr align' output dir has one)")
    ali_shift_ms = float(load_config(info_path).get("frame_shift", 0.0)) * 1000.0
    feat_shift_ms = float(load_feature_config(data_dir)["frame_shift"])
    ratio = ali_shift_ms / feat_shift_ms
    if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-3:
        raise DataDirError(
            f"{info_path}: frame_shift {ali_shift_ms:g} ms is not a whole multiple of the features' "
            f"{feat_shift_ms:g} ms ({data_dir / 'conf/feats.yaml'})"
        )
    return int(round(ratio))


def encode_events(contexts: torch.Tensor, pdf_classes: torch.Tensor, base: int, num_classes: int) -> torch.Tensor:
    """One int64 per event: the context phones and the pdf class as digits (radix ``base``, then ``num_classes``)."""
    code = torch.zeros(len(contexts), dtype=torch.int64)
    for k in range(contexts.shape[1]):
        code = code * base + contexts[:, k]
    return code * num_classes + pdf_classes


def decode_events(codes: torch.Tensor, width: int, base: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`encode_events`: ``(contexts (M, width), pdf_classes (M,))``."""
    pdf_classes = codes % num_classes
    rest = torch.div(codes, num_classes, rounding_mode="floor")
    columns = []
    for _ in range(width):
        columns.append(rest % base)
        rest = torch.div(rest, base, rounding_mode="floor")
    return torch.stack(columns[::-1], dim=1), pdf_classes


def utterance_events(
    pdfs: torch.Tensor, pdf_phone: torch.Tensor, pdf_class: torch.Tensor, continues: torch.Tensor, width: int, centre: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Event of each alignment frame of one utterance.

    Returns:
      ``(contexts, pdf_classes)``: (T', width) and (T',) int64.
    """
    instance_phones, frame_instance = phone_instances(pdfs, pdf_phone, continues)
    return context_windows(instance_phones, width, centre)[frame_instance], pdf_class[pdfs]


def _check_alignment(utt: str, pdfs: torch.Tensor, num_pdfs: int, num_feats: int, s: int, ark: Path, scp: Path) -> None:
    if len(pdfs) == 0 or int(pdfs.min()) < 1 or int(pdfs.max()) > num_pdfs:
        raise DataDirError(f"{ark}: utterance '{utt}' has pdf ids outside 1..{num_pdfs} of the lang (wrong --lang?)")
    expected = -(-num_feats // s)
    if len(pdfs) != expected:
        raise DataDirError(
            f"{ark}: utterance '{utt}' has {len(pdfs)} frames but {scp} gives {num_feats} feature frames "
            f"({expected} at subsampling {s}): alignment and features do not match"
        )


def _sum_rows(index: torch.Tensor, feats: torch.Tensor, num_rows: int) -> torch.Tensor:
    """(num_rows, 1 + 2 D) float64: frame stats of ``feats`` (T, D) summed by ``index`` (T,)."""
    out = torch.zeros(num_rows, 1 + 2 * feats.shape[1], dtype=torch.float64)
    for begin in range(0, len(feats), CHUNK_FRAMES):
        end = begin + CHUNK_FRAMES
        out.index_add_(0, index[begin:end], frame_stats(feats[begin:end]))
    return out


def accumulate_tree_stats(
    ali_dir: str | Path, data_dir: str | Path, lang: LangDir, width: int, centre: int, deltas: bool
) -> TreeStats:
    """``acc-tree-stats``: statistics of every event of an alignment dir on a data dir's features.

    Args:
      ali_dir: ``asr align`` output (``ali.ark``, ``info.yaml``) in ``lang``'s pdf ids.
      data_dir: Data dir with ``feats.scp`` (CMVN applied as recorded there).
      lang: The lang dir of the alignments.
      width, centre: Context window and the modelled phone's position in it.
      deltas: Append deltas and delta-deltas (:func:`add_deltas`).

    Raises:
      DataDirError: for a missing alignment, alignments and features that
        do not match (frame counts, no common utterance) or bad pdf ids.
    """
    ali_dir, data_dir = Path(ali_dir), Path(data_dir)
    alignments = read_alignments(ali_dir)
    s = subsampling_factor(ali_dir, data_dir)
    pdf_phone, pdf_class = pdf_phone_and_class(lang)
    continues = pdf_continues(lang)
    base, num_classes = int(pdf_phone.max()) + 1, int(pdf_class.max()) + 1
    codes, frames, used = [], [], 0
    for utt, feats in load_features(data_dir):
        pdfs = alignments.get(utt)
        if pdfs is None:
            continue
        _check_alignment(utt, pdfs, lang.num_pdfs, len(feats), s, ali_dir / "ali.ark", data_dir / "feats.scp")
        contexts, classes = utterance_events(pdfs, pdf_phone, pdf_class, continues, width, centre)
        utt_codes = encode_events(contexts, classes, base, num_classes)
        codes.append(stretch_to_input_rate(utt_codes, len(feats), s))
        frames.append(add_deltas(feats) if deltas else feats.to(torch.float32))
        used += 1
    if not used:
        raise DataDirError(f"{ali_dir / 'ali.ark'}: no utterance in common with {data_dir / 'feats.scp'}")
    if used < len(alignments):
        log.warning("%d of %d aligned utterances have no features in %s", len(alignments) - used, len(alignments), data_dir)
    unique, index = torch.unique(torch.cat(codes), return_inverse=True)
    stats = _sum_rows(index, torch.cat(frames), len(unique))
    contexts, classes = decode_events(unique, width, base, num_classes)
    log.info(
        "tree stats: %d utterances, %d frames (alignment x%d stretched to the feature rate), %d events, dim %d",
        used, int(stats[:, 0].sum()), s, len(unique), (stats.shape[1] - 1) // 2,
    )
    return TreeStats(contexts, classes, stats, centre)
