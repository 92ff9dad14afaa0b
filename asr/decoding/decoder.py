"""The decoder: acoustic model + HLG -> words, timings and lattices."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import k2
import torch

from asr.data.batching import length_batches
from asr.decoding.confidence import LexiconIndex, word_confidences
from asr.decoding.ctm import TimedWord, WordAligner
from asr.decoding.search import SearchConfig, decode_scores, prepare_hlg, read_paths, rescore_best_paths, search
from asr.errors import ModelDirError
from asr.lang.fsa_io import load_fsa
from asr.lang.k2fsa import arc_splits
from asr.model_dir import ModelDir
from asr.models.priors import scaled_log_likelihoods

log = logging.getLogger("asr.decoding.decoder")


def warn_decode_scale(md: ModelDir, cfg: SearchConfig) -> None:
    """Warns when ``cfg`` decodes at another acoustic scale than the model's criterion declares."""
    wanted = md.declared_acoustic_scale
    if wanted is not None and cfg.acoustic_scale != wanted:
        # LF-MMI outputs are trained against graph scores at scale 1; a
        # hybrid acoustic scale (0.1) lets the graph costs delete words.
        log.warning(
            "%s is a '%s' model, decoded with acoustic_scale %g: its outputs are meant for %g "
            "(e.g. conf/yesno/decode_lfmmi.yaml)", md.path, md.info.get("criterion"), cfg.acoustic_scale, wanted,
        )


@dataclass
class Hypothesis:
    utt_id: str
    words: list[str]
    timed_words: list[TimedWord] = field(default_factory=list)
    partial: bool = False


class Decoder:
    """Decodes feature matrices with a model dir's network and an HLG."""

    def __init__(self, md: ModelDir, HLG: k2.Fsa, cfg: SearchConfig, use_priors: bool = True, prior_scale: float = 1.0):
        self.md = md
        self.HLG = prepare_hlg(HLG)
        self.cfg = cfg
        self.log_priors = md.log_priors if use_priors else None
        if self.log_priors is not None:
            self.log_priors = prior_scale * self.log_priors
        if use_priors and md.log_priors is None:
            log.info("%s has no priors: decoding its outputs as log-likelihoods", md.path)
        warn_decode_scale(md, cfg)
        self.aligner = WordAligner(md.lang)
        self.lexicon = LexiconIndex.build(self.aligner.prons, self.aligner.silence)
        self.device = next(md.model.parameters()).device
        self.words = md.lang.words

    @classmethod
    def from_model_dir(
        cls, model_dir: str | Path, cfg: SearchConfig, graph_dir: str | Path | None = None, use_priors: bool = True,
        device: str = "cpu", prior_scale: float = 1.0,
    ) -> "Decoder":
        md = ModelDir.load(model_dir, device)
        hlg_path = Path(graph_dir) / "HLG.pt" if graph_dir else md.path / "graph" / "HLG.pt"
        if not hlg_path.is_file():
            raise ModelDirError(f"{hlg_path}: no such file (pass --graph-dir or train with --graph-dir)")
        return cls(md, load_fsa(hlg_path), cfg, use_priors, prior_scale)

    def acoustic_scores(self, feats: torch.Tensor, lengths: torch.Tensor, ivectors: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Network forward: (log-posteriors, unscaled log-likelihoods, output lengths), on CPU.

        ``ivectors``: (N, T, D) per input frame, for a model with i-vectors.
        """
        if ivectors is not None:
            ivectors = ivectors.to(self.device)
        with torch.no_grad():
            log_post, out_lengths = self.md.model(feats.to(self.device), lengths.to(self.device), ivectors)
        log_post = log_post.cpu()
        return log_post, scaled_log_likelihoods(log_post, self.log_priors, 1.0), out_lengths.cpu()

    def batches(self, items: list[tuple[str, torch.Tensor]]) -> list[list[int]]:
        """Length-sorted batches of ``(utt_id, feats)`` items (indices)."""
        return length_batches([len(f) for _, f in items], [u for u, _ in items], self.cfg.max_frames)

    def decode_batch(self, utt_ids: list[str], feats_list: list[torch.Tensor],
                     ivectors: list[torch.Tensor] | None = None) -> tuple[list[Hypothesis], k2.Fsa]:
        """Decodes utterances given in decreasing length order.

        ``ivectors``: per utterance its (K, D) i-vector rows (one per
        ``md.ivector.period`` frames), for a model with i-vectors
        (:func:`asr.adapt.online.online_ivectors`).

        Returns:
          Hypotheses and their lattices (an FsaVec in the same order).
        """
        lengths = torch.tensor([len(f) for f in feats_list])
        feats = torch.zeros(len(feats_list), int(lengths.max()), feats_list[0].shape[1])
        for i, f in enumerate(feats_list):
            feats[i, : len(f)] = f
        log_post, am, out_lengths = self.acoustic_scores(feats, lengths, self._frame_ivectors(ivectors, feats))
        lattice, partial = self._search(utt_ids, am, out_lengths)
        best = rescore_best_paths(lattice, 1.0, self.cfg.word_penalty, self.cfg.acoustic_scale)
        paths = read_paths(best, out_lengths.tolist())
        segments = [self.aligner.segments(p) for p in paths]
        scores = decode_scores(lattice, 1.0, self.cfg.word_penalty, self.cfg.acoustic_scale)
        confidences = word_confidences(lattice, self.cfg.confidence_scale * scores, paths, segments, self.lexicon,
                                       log_post, utt_ids)
        hyps = []
        for i, (utt, path) in enumerate(zip(utt_ids, paths)):
            timed = self.aligner.timed_words(segments[i], self.md.frame_shift, confidences[i])
            hyps.append(Hypothesis(utt, [self.words.get(w) for w in path.word_ids], timed, utt in partial))
        return hyps, lattice

    def _frame_ivectors(self, rows: list[torch.Tensor] | None, feats: torch.Tensor) -> torch.Tensor | None:
        """(N, T, D) per-frame i-vectors of padded (N, T, F) ``feats`` (None for a model without them)."""
        if self.md.ivector is None:
            return None
        if rows is None:
            raise ValueError(f"{self.md.path} takes i-vectors: pass them to decode_batch")
        from asr.adapt.online import frame_ivectors

        out = torch.zeros(feats.shape[0], feats.shape[1], self.md.ivector.ivector_dim)
        for i, r in enumerate(rows):
            out[i] = frame_ivectors(r, self.md.ivector.period, feats.shape[1])
        return out

    def _search(self, utt_ids: list[str], am: torch.Tensor, out_lengths: torch.Tensor) -> tuple[k2.Fsa, set[str]]:
        """Searches without partial paths first; utterances left with no
        complete path are searched again with ``allow_partial`` (if the config
        allows it), and each such use is logged."""
        strict = replace(self.cfg, allow_partial=False)
        lattice = search(self.HLG, am, out_lengths, strict)
        arcs_per_utt = arc_splits(lattice).diff()
        empty = [u for u, n in zip(utt_ids, arcs_per_utt.tolist()) if n == 0]
        if not empty:
            return lattice, set()
        if not self.cfg.allow_partial:
            log.warning("no complete path within the beams for %d utterance(s): %s", len(empty), " ".join(empty))
            return lattice, set()
        log.warning("no complete path within the beams; using partial paths (allow_partial) for: %s", " ".join(empty))
        return search(self.HLG, am, out_lengths, self.cfg), set(empty)
