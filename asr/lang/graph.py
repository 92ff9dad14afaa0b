"""Language-model FSA (G) and the decoding graph HLG.

G is built by a grammar kind (:mod:`asr.lang.grammar`); for an n-gram LM it
comes from an ARPA file through ``kaldilm`` (Kaldi's ``arpa2fst``), with
``#0`` on back-off arcs.  HLG is compiled the standard k2/icefall way:
L_disambig o G, determinize, drop disambiguation symbols and epsilons, then
compose with H, connect and arc-sort.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import k2

from asr.errors import LanguageModelError
from asr.lang.grammar import CompiledGrammar, NgramConfig, compile_grammar
from asr.lang.lang_dir import LangDir

log = logging.getLogger("asr.lang.graph")


def compile_lg(L_disambig: k2.Fsa, G: k2.Fsa, first_phone_disambig: int, first_word_disambig: int) -> k2.Fsa:
    """Composes and determinizes L o G, then removes disambiguation symbols.

    Returns:
      LG with phone labels and ragged word aux_labels, epsilon-free.
    """
    LG = k2.connect(k2.compose(k2.arc_sort(L_disambig), k2.arc_sort(G)))
    LG = k2.connect(k2.determinize(LG))
    labels = LG.labels
    labels[labels >= first_phone_disambig] = 0
    LG.labels = labels
    LG.aux_labels.values[LG.aux_labels.values >= first_word_disambig] = 0
    LG = k2.connect(k2.remove_epsilon(LG))
    LG.aux_labels = LG.aux_labels.remove_values_eq(0)
    return k2.arc_sort(LG)


def compile_hlg(lang: LangDir, G: k2.Fsa) -> k2.Fsa:
    """Compiles HLG (HCLG for a lang with a tree): pdf-id sequences (labels) to words (ragged aux_labels).

    HLG's scores are graph scores (G plus L's silence probabilities); the
    decoder keeps them apart from acoustic scores in its lattices.
    """
    t0 = time.perf_counter()
    L = lang.load_graph("L_disambig")
    LG = compile_lg(L, G, lang.phones["#0"], lang.words["#0"])
    log.info("LG: %d states, %d arcs", LG.shape[0], LG.num_arcs)
    # With a tree this is H o C o LG (asr.lang.context_graph): same conventions, tied pdfs.
    HLG = lang.compose_h(LG)
    elapsed = time.perf_counter() - t0
    name = "HCLG" if lang.context is not None else "HLG"
    if HLG.num_arcs == 0:
        raise LanguageModelError(f"{name} is empty: the LM and lexicon share no word sequence")
    log.info("%s: %d states, %d arcs, compiled in %.2f s", name, HLG.shape[0], HLG.num_arcs, elapsed)
    return HLG


def graph_size(fsa: k2.Fsa) -> dict[str, int]:
    """Number of states and arcs of a single FSA."""
    return {"states": int(fsa.shape[0]), "arcs": int(fsa.num_arcs)}


#: Graph-dir files that only some grammar kinds write; a rebuild with another kind removes them.
KIND_SPECIFIC_OUTPUTS = ("lm.arpa",)


def compile_graph_dir(lang_dir: str | Path, out_dir: str | Path, kind: str, config: Any) -> k2.Fsa:
    """``asr compile-graph``: G of a grammar kind, and HLG, in ``out_dir``.

    Args:
      lang_dir: The lang dir (``asr prepare-lang``).
      out_dir: The graph dir to write (``data/lang_<lm>``).
      kind: A key of :data:`asr.lang.grammar.GRAMMARS` (``ngram``, ``one-of``, ...).
      config: That kind's config (``NgramConfig``, ``WordListConfig``, ...).

    Writes ``G.pt``, ``HLG.pt``, ``graph.yaml`` (source, sizes, compile time)
    and the kind's own files (the ngram kind's ``lm.arpa``).  Nothing is
    written before G and HLG are built, so an error leaves ``out_dir`` as it was.
    """
    lang = LangDir.load(lang_dir)
    grammar = compile_grammar(lang, kind, config)
    t0 = time.perf_counter()
    HLG = compile_hlg(lang, grammar.G)
    elapsed = time.perf_counter() - t0
    _write_graph_dir(Path(out_dir), lang, grammar, HLG, elapsed)
    return HLG


def _write_graph_dir(out_dir: Path, lang: LangDir, grammar: CompiledGrammar, HLG: k2.Fsa, elapsed: float) -> None:
    """Writes a graph dir's files, each atomically, and removes stale kind-specific ones."""
    from asr.config import save_config
    from asr.fileio import atomic_write_text
    from asr.lang.fsa_io import save_fsa

    for name, text in grammar.files.items():
        atomic_write_text(out_dir / name, text)
    save_fsa(grammar.G, out_dir / "G.pt")
    save_fsa(HLG, out_dir / "HLG.pt")
    save_config(
        {**grammar.info, "G": graph_size(grammar.G), "HLG": graph_size(HLG),
         "compile_seconds": round(elapsed, 3), "lang_dir": str(lang.path)},
        out_dir / "graph.yaml",
    )
    for name in KIND_SPECIFIC_OUTPUTS:
        stale = out_dir / name
        if name not in grammar.files and stale.is_file():
            # e.g. an lm.arpa of an earlier n-gram build, which copy_graph would carry into a model dir
            log.info("%s: removed (not part of a %s graph)", stale, grammar.info.get("grammar", "this"))
            stale.unlink()


def build_graph_dir(
    lang_dir: str | Path,
    out_dir: str | Path,
    arpa: str | Path | None = None,
    text_files: list[str | Path] | None = None,
    order: int = 2,
    method: str = "kneser-ney",
    drop_bos_eos_bigram: bool = True,
) -> k2.Fsa:
    """An n-gram graph dir: :func:`compile_graph_dir` with the ``ngram`` kind.

    Either ``arpa`` (a user-supplied ARPA file) or ``text_files`` (Kaldi
    ``text`` files to estimate an n-gram LM from, with ``order`` and
    ``method``, a key of :data:`asr.lang.lm.LM_ESTIMATORS`) must be given;
    see :func:`asr.lang.grammar.build_ngram`.  Writes ``lm.arpa``, ``G.pt``,
    ``HLG.pt`` and ``graph.yaml``.
    """
    config = NgramConfig(arpa, list(text_files) if text_files else None, order, method, drop_bos_eos_bigram)
    return compile_graph_dir(lang_dir, out_dir, "ngram", config)
