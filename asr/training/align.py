"""Forced alignment of a data dir with a trained model.

Writes, into the output folder:

- ``ali.ark``/``ali.scp``: per-utterance int32 vectors of pdf ids (Kaldi
  style, through kaldiio), one per network output frame;
- ``phone.ctm`` and ``word.ctm``: Kaldi CTM lines ``utt 1 start dur token``
  with times in seconds;
- ``info.yaml``: frame shift and counts;
- ``phone_durations.txt``: per phone, its count, mean and minimum duration,
  the topology's minimum and the fraction of occurrences at that minimum
  (:func:`asr.training.sanity.check_phone_durations` warns when a phone is
  stuck there).

Utterances that cannot be aligned (too short for their transcript) are
reported and skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
import numpy as np
import torch
from tqdm import tqdm

from asr.config import save_config
from asr.data.datadir import DataDir
from asr.errors import DataDirError
from asr.fileio import atomic_open, atomic_write_text
from asr.lang.context import pdf_map
from asr.lang.lang_dir import LangDir
from asr.model_dir import ModelDir
from asr.models.priors import scaled_log_likelihoods
from asr.training.alignment import Alignment, alignment_segments, forced_align
from asr.training.data import Utterance, collate, load_utterances, make_batches
from asr.training.graphs import NumeratorGraphCompiler
from asr.training.sanity import check_phone_durations

log = logging.getLogger("asr.training.align")


def align_utterances(
    md: ModelDir,
    utts: list[Utterance],
    max_frames: int,
    output_beam: float,
    use_priors: bool = True,
    lang: LangDir | None = None,
) -> dict[str, Alignment]:
    """Aligns utterances with a model; returns the ones that could be aligned.

    With ``use_priors`` and a model that has priors, the graph search runs on
    scaled likelihoods (as decoding does) instead of posteriors.

    Args:
      lang: Align in this lang dir instead of the model's own, e.g. a
        monophone model into the word-internal context-dependent lang: each
        unit's pdfs are scored by its base phone's (Kaldi's ``convert-ali``
        does this after the fact; here the graph search itself sees the
        target units, so the alignment comes out in their pdf ids).
    """
    lang = lang or md.lang
    columns = None
    if lang.path.resolve() != md.lang.path.resolve():
        columns = pdf_map(md.lang, lang)[1:] - 1
        log.info("aligning in %s: %d pdfs scored by the model's %d", lang.path, len(columns), md.model.num_pdfs)
    compiler = NumeratorGraphCompiler(lang)
    priors = md.log_priors if use_priors else None
    result: dict[str, Alignment] = {}
    failed, oov = [], 0
    device = next(md.model.parameters()).device
    with torch.no_grad():
        for idx in tqdm(make_batches(utts, max_frames, shuffle=False, seed=0), desc="align", leave=False):
            batch = collate([utts[i] for i in idx])
            ivectors = batch.ivectors.to(device) if batch.ivectors is not None else None
            log_probs, out_lengths = md.model(batch.feats.to(device), batch.lengths.to(device), ivectors)
            scores = scaled_log_likelihoods(log_probs.cpu(), priors, 1.0)
            if columns is not None:
                scores = scores[..., columns]
            ids, n = compiler.batch_word_ids(batch.words)
            oov += n
            graphs = compiler.compile(ids)
            for utt, ali in zip(batch.utt_ids, forced_align(scores, out_lengths.cpu(), graphs, output_beam)):
                if ali is None:
                    failed.append(utt)
                else:
                    result[utt] = ali
    if oov:
        log.warning("%d OOV words mapped to <UNK> while aligning", oov)
    if failed:
        log.warning(
            "%d of %d utterances could not be aligned (too short for their transcript?) and are skipped: %s%s",
            len(failed), len(utts), " ".join(failed[:10]), " ..." if len(failed) > 10 else "",
        )
    log.info("aligned %d of %d utterances", len(result), len(utts))
    return result


def ctm_lines(
    utt: str, ali: Alignment, frame_shift: float, silence_ids: set[int], phone_names, word_names
) -> tuple[list[str], list[str]]:
    """Phone- and word-level CTM lines of one alignment."""
    phone_segs, word_segs = alignment_segments(ali, silence_ids)
    phones = [f"{utt} 1 {s * frame_shift:.3f} {n * frame_shift:.3f} {phone_names(p)}\n" for s, n, p in phone_segs]
    words = [f"{utt} 1 {s * frame_shift:.3f} {n * frame_shift:.3f} {word_names(w)}\n" for s, n, w in word_segs]
    return phones, words


def write_alignments(
    md: ModelDir, alignments: dict[str, Alignment], out_dir: Path, num_utts: int, lang: LangDir | None = None
) -> None:
    """Writes ali.ark/ali.scp, phone.ctm, word.ctm and info.yaml atomically.

    ``lang`` is the lang dir the alignments are in (default: the model's).
    """
    lang = lang or md.lang
    keys = sorted(alignments, key=lambda k: k.encode())
    write_alignment_ark({k: a.pdfs for k, a in alignments.items()}, out_dir)
    silence = {lang.phones[p] for p in lang.silence_phones}
    with atomic_open(out_dir / "phone.ctm") as pf, atomic_open(out_dir / "word.ctm") as wf:
        for k in keys:
            p, w = ctm_lines(k, alignments[k], md.frame_shift, silence, lang.phones.get, lang.words.get)
            pf.writelines(p)
            wf.writelines(w)
    # A flat start stuck in its degenerate optimum shows here first: phones at their minimum duration.
    check_phone_durations(alignments, lang, out_dir)
    save_config(
        {"frame_shift": md.frame_shift, "aligned": len(keys), "failed": num_utts - len(keys), "model_dir": str(md.path),
         "lang_dir": str(lang.path)},
        out_dir / "info.yaml",
    )


def write_alignment_ark(alignments: dict[str, torch.Tensor], out: Path) -> None:
    """``ali.ark`` + ``ali.scp`` (int32 pdf-id vectors, keys in byte order), written through temporaries."""
    out.mkdir(parents=True, exist_ok=True)
    ark, scp = out / "ali.ark", out / "ali.scp"
    tmp_ark, tmp_scp = out / ".ali.ark.tmp", out / ".ali.scp.tmp"
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for k in sorted(alignments, key=lambda k: k.encode()):
                writer(k, alignments[k].numpy().astype(np.int32))
        # The scp names the temporary ark; point it at the final name.
        text = tmp_scp.read_text().replace(str(tmp_ark), str(ark.resolve()))
        tmp_ark.replace(ark)
        atomic_write_text(scp, text)
    finally:
        tmp_scp.unlink(missing_ok=True)
        tmp_ark.unlink(missing_ok=True)


def read_alignments(ali_dir: str | Path) -> dict[str, torch.Tensor]:
    """Reads ``ali.ark`` into utt -> pdf-id tensors."""
    ark = Path(ali_dir) / "ali.ark"
    if not ark.is_file():
        raise DataDirError(f"{ark}: no such file (run asr align)")
    out = {}
    # Read the ark as a plain file: kaldiio's scp readers would run "cmd |"
    # entries through a shell.
    try:
        with open(ark, "rb") as f:
            for key, vec in kaldiio.load_ark(f):
                out[key] = torch.from_numpy(np.asarray(vec, dtype=np.int64))
    except Exception as e:  # kaldiio raises assorted errors on corrupt data
        raise DataDirError(f"{ark}: corrupt alignment archive ({type(e).__name__}: {e})") from None
    return out


def align_data_dir(
    model_dir: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    max_frames: int,
    output_beam: float,
    lang_dir: str | Path | None = None,
    ivector_dir: str | Path | None = None,
) -> dict[str, Alignment]:
    """``asr align``: aligns every utterance of a data dir and writes the outputs.

    ``lang_dir`` (default: the model's own) is the lang to align in; see
    :func:`align_utterances`.  A model with i-vectors reads them from
    ``ivector_dir`` (e.g. the training i-vectors), or computes them online
    per utterance.
    """
    md = ModelDir.load(model_dir)
    dd = DataDir.load(data_dir)
    lang = LangDir.load(lang_dir) if lang_dir is not None else md.lang
    utts = load_utterances(dd.path)
    if md.ivector is not None:
        from asr.adapt.data import attach_model_ivectors

        attach_model_ivectors(utts, md.ivector, dd.path, ivector_dir)
    alignments = align_utterances(md, utts, max_frames, output_beam, bool(md.info.get("use_priors")), lang)
    write_alignments(md, alignments, Path(out_dir), len(utts), lang)
    return alignments
