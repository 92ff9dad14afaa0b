"""The lang directory: symbol tables, phone sets, pdfs, and the L and H graphs.

Layout (Kaldi's, plus k2 graphs)::

    lang/lexicon.txt           lexicon used (with <UNK>)
    lang/lexicon_disambig.txt  with #1, #2, ... appended where needed
    lang/phones.txt            <eps>, phones, #0 ... #N
    lang/words.txt             <eps>, words, #0, <s>, </s>
    lang/phones/{silence,nonsilence,optional_silence,disambig}.txt
    lang/pdfs.txt              HMM state inventory, ids from 1
    lang/lang.yaml             the config used (silence probability, topology)
    lang/L.pt, L_disambig.pt   lexicon FSTs (phones -> words)
    lang/H.pt                  HMM FST (pdfs -> phones)
    lang/tree.yaml             only in a context-dependent lang (``asr build-tree --lang-out``):
                               the decision tree; pdfs are its leaves and graphs are built
                               through it (:mod:`asr.lang.context_graph`), so there is no H.pt
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import k2
import torch

from asr.config import check_keys, option, require, save_config
from asr.errors import LexiconError
from asr.fileio import read_lines
from asr.lang.context import expand_lexicon, position_dependent_lexicon
from asr.lang.fsa_io import load_fsa, save_fsa
from asr.lang.lexicon import Lexicon, add_disambig_symbols, read_lexicon, write_lexicon
from asr.lang.topology import PdfTable, Topology, TopologyConfig, build_h, topology_from_config

if TYPE_CHECKING:
    from asr.lang.context_graph import ContextDependency

log = logging.getLogger("asr.lang.lang_dir")

#: The decision tree of a context-dependent lang dir.
TREE_FILE = "tree.yaml"

EPS = "<eps>"
UNK = "<UNK>"


class SymbolTable:
    """A bidirectional ``symbol <-> id`` map backed by a Kaldi ``.txt`` file."""

    def __init__(self, sym2id: dict[str, int]):
        self.sym2id = dict(sym2id)
        self.id2sym = {i: s for s, i in sym2id.items()}

    @classmethod
    def read(cls, path: str | Path) -> "SymbolTable":
        sym2id: dict[str, int] = {}
        for i, line in enumerate(read_lines(path, LexiconError), 1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise LexiconError(f"{path}:{i}: expected 'symbol id'")
            if fields[0] in sym2id:
                raise LexiconError(f"{path}:{i}: duplicate symbol '{fields[0]}'")
            sym2id[fields[0]] = int(fields[1])
        return cls(sym2id)

    def write(self, path: str | Path) -> None:
        from asr.fileio import atomic_write_text

        atomic_write_text(path, "".join(f"{s} {i}\n" for s, i in sorted(self.sym2id.items(), key=lambda x: x[1])))

    def __getitem__(self, key: str) -> int:
        return self.sym2id[key]

    def __contains__(self, key: str) -> bool:
        return key in self.sym2id

    def __len__(self) -> int:
        return len(self.sym2id)

    def get(self, i: int) -> str:
        return self.id2sym[i]


def build_lexicon_fst(
    lexicon: Lexicon,
    phones: SymbolTable,
    words: SymbolTable,
    sil_phone: str,
    sil_prob: float,
    disambig_loops: bool,
) -> k2.Fsa:
    """Builds L (phones -> words) with optional silence between words.

    As Kaldi's ``make_lexicon_fst.py``: after each word (and at the start)
    the optional silence phone follows with probability ``sil_prob``.  With
    ``disambig_loops`` a ``#0:#0`` self-loop on the word-boundary state lets
    G's back-off arcs through composition.

    Returns:
      An FST whose labels are phone ids and aux_labels word ids; scores are
      log-probabilities.
    """
    if not 0.0 <= sil_prob < 1.0:
        raise LexiconError(f"sil_prob must be in [0, 1), got {sil_prob}")
    start, loop, sil = 0, 1, 2
    next_state = 3
    no_sil_score = math.log(1.0 - sil_prob)
    arcs: list[tuple[int, int, int, int, float]] = []
    sil_id = phones[sil_phone]
    if sil_prob > 0:
        sil_score = math.log(sil_prob)
        arcs += [(start, loop, 0, 0, no_sil_score), (start, sil, 0, 0, sil_score), (sil, loop, sil_id, 0, 0.0)]
    else:
        arcs.append((start, loop, 0, 0, 0.0))
    for word, pron in lexicon:
        ids = [phones[p] for p in pron]
        cur = loop
        for i, p in enumerate(ids[:-1]):
            arcs.append((cur, next_state, p, words[word] if i == 0 else 0, 0.0))
            cur, next_state = next_state, next_state + 1
        w = words[word] if len(ids) == 1 else 0
        if sil_prob > 0:
            arcs += [(cur, loop, ids[-1], w, no_sil_score), (cur, sil, ids[-1], w, sil_score)]
        else:
            arcs.append((cur, loop, ids[-1], w, 0.0))
    if disambig_loops:
        arcs.append((loop, loop, phones["#0"], words["#0"], 0.0))
    final = next_state
    arcs.append((loop, final, -1, -1, 0.0))
    arcs.sort(key=lambda a: a[0])
    text = "\n".join(f"{a} {b} {c} {d} {e}" for a, b, c, d, e in arcs) + f"\n{final}\n"
    return k2.arc_sort(k2.Fsa.from_str(text, acceptor=False))


def make_pdf_table(
    hmm_phones: list[str], silence_phones: list[str], topo: Topology, silence_topo: Topology
) -> PdfTable:
    """The pdf inventory: silence phones use ``silence_topo``, the others ``topo``."""
    silence = set(silence_phones)
    return PdfTable(hmm_phones, [silence_topo if p in silence else topo for p in hmm_phones])


@dataclass
class LangDir:
    """A loaded lang directory."""

    path: Path
    phones: SymbolTable
    words: SymbolTable
    lexicon: Lexicon
    topology: Topology
    silence_topology: Topology
    hmm_phones: list[str]
    silence_phones: list[str]
    optional_silence: str
    config: dict

    @classmethod
    def load(cls, path: str | Path) -> "LangDir":
        from asr.config import load_config

        path = Path(path)
        for name in ("phones.txt", "words.txt", "lexicon.txt", "lang.yaml", "pdfs.txt"):
            if not (path / name).is_file():
                raise LexiconError(f"{path / name}: missing from lang dir (run 'asr prepare-lang')")
        cfg = load_config(path / "lang.yaml")
        phones = SymbolTable.read(path / "phones.txt")
        return cls(
            path=path,
            phones=phones,
            words=SymbolTable.read(path / "words.txt"),
            lexicon=read_lexicon(path / "lexicon.txt", set(phones.sym2id)),
            topology=topology_from_config(cfg["topology"]),
            silence_topology=topology_from_config(cfg.get("silence_topology", cfg["topology"])),
            hmm_phones=[p for p in phones.sym2id if p != EPS and not p.startswith("#")],
            silence_phones=list(cfg["silence_phones"]),
            optional_silence=cfg["optional_silence"],
            config=cfg,
        )

    @property
    def pdf_table(self) -> PdfTable:
        """The monophone pdf inventory (of the phones' own HMMs; a tree's leaves are not in it)."""
        return make_pdf_table(self.hmm_phones, self.silence_phones, self.topology, self.silence_topology)

    @cached_property
    def context(self) -> "ContextDependency | None":
        """The phonetic context of a lang with a ``tree.yaml``, None for a monophone lang."""
        if not (self.path / TREE_FILE).is_file():
            return None
        from asr.lang.context_graph import ContextDependency, phone_topologies
        from asr.tree.tree import Tree

        tree = Tree.load(self.path / TREE_FILE)
        tree.check_lang(self.phones.sym2id, str(self.path / TREE_FILE))
        return ContextDependency(tree, phone_topologies(self))

    @property
    def num_pdfs(self) -> int:
        """Output dimension of a model over this lang: the tree's leaves, or the phones' pdfs."""
        return self.context.num_pdfs if self.context is not None else self.pdf_table.num_pdfs

    def pdf_to_phone(self) -> torch.Tensor:
        """Maps pdf id (index) to phone id; index 0 is unused.

        Raises:
          LexiconError: for a context-dependent lang, whose leaves may be shared by phones.
        """
        if self.context is not None:
            raise LexiconError(f"{self.path / TREE_FILE}: tree leaves are not phone-specific (no pdf -> phone map)")
        table = self.pdf_table
        return torch.tensor([0] + [self.phones[self.hmm_phones[j]] for j in table.pdf_to_phone_index()])

    def load_graph(self, name: str) -> k2.Fsa:
        """Loads ``L``, ``L_disambig`` or ``H`` from the lang dir."""
        if name == "H" and self.context is not None:
            raise LexiconError(f"{self.path}: a context-dependent lang has no H.pt (graphs go through its tree)")
        return load_fsa(self.path / f"{name}.pt")

    def compose_h(self, phone_fsa: k2.Fsa) -> k2.Fsa:
        """H o X (through the tree's context for a context-dependent lang) of an epsilon-free phone FSA X.

        The result has pdf-id labels, X's scores and aux labels on the arcs
        that enter a phone, and a ``phones`` attribute (the phone entered, else 0).
        """
        if self.context is not None:
            return k2.arc_sort(k2.connect(self.context.compose(phone_fsa)))
        H = k2.arc_sort(self.load_graph("H"))
        return k2.arc_sort(k2.connect(k2.compose(H, k2.arc_sort(phone_fsa), inner_labels="phones")))


def read_word_counts(text_path: str | Path) -> Counter:
    """Word counts of a Kaldi ``text`` file (``utt-id word word ...``)."""
    from asr.data.datadir import read_text

    return Counter(w for words in read_text(text_path).values() for w in words)


#: Lang-config keys that rewrite the lexicon's phones into units, and what they record.
UNIT_EXPANSION_KEYS = ("context", "position_dependent", "base_phones")


def plain_phone_config(cfg: dict) -> dict:
    """A lang config that takes a lexicon's phones as they are.

    For building a lang over units that are already expanded (a lang dir's
    own ``lexicon.txt``, or words made of its units): without this,
    :func:`prepare_lang` would expand them a second time.
    """
    return {k: v for k, v in cfg.items() if k not in UNIT_EXPANSION_KEYS}


@dataclass
class ContextConfig:
    """The ``context`` section: word-internal context-dependent phones (asr/lang/context.py)."""

    min_count: float = option(doc="a unit L-P+R, L-P or P+R needs this many occurrences in the training text")


@dataclass
class LangConfig:
    """A lang config (``asr prepare-lang --config``; asr/conf/lang*.yaml)."""

    silence_phones: list[str] = option(doc="silence phones (each gets silence_topology)")
    optional_silence: str = option(doc="the optional silence phone between words (one of silence_phones)")
    sil_prob: float = option(doc="probability of optional silence after each word (Kaldi's 0.5), in [0, 1)")
    topology: TopologyConfig = option(doc="HMM topology of the non-silence phones")
    silence_topology: TopologyConfig | None = option(None, "HMM topology of the silence phones (null: topology)")
    unk_pron: list[str] | str | None = option(None, "pronunciation of <UNK> when the lexicon has none (null: "
                                              "the optional silence)")
    context: ContextConfig | None = option(None, "word-internal context-dependent units (needs --text)")
    position_dependent: bool = option(False, "word-position-dependent phones P_B, P_I, P_E, P_S (Kaldi's default)")
    base_phones: dict[str, str] | None = option(
        None, "written by prepare-lang into a lang dir's lang.yaml: each unit's base phone (not for user configs)")


def prepare_lang(
    lexicon_path: str | Path, lang_dir: str | Path, cfg: dict, text_path: str | Path | None = None
) -> LangDir:
    """Builds a lang directory from a lexicon.

    Args:
      lexicon_path: ``WORD PHONE ...`` lexicon.
      lang_dir: Output folder.
      cfg: The lang config (``asr/conf/lang.yaml``): ``silence_phones``,
        ``optional_silence``, ``sil_prob``, ``unk_pron``, ``topology`` and
        optionally ``context: {min_count: N}`` for word-internal
        context-dependent phones and ``position_dependent: true`` for
        word-position-dependent phones (:mod:`asr.lang.context`).
      text_path: Training transcripts (Kaldi ``text``); needed with ``context``,
        whose units are chosen by their counts in it.

    Raises:
      LexiconError: for a malformed lexicon or config.
    """
    lang_dir = Path(lang_dir)
    opts = _lang_options(cfg)
    lexicon = _lexicon_with_unk(lexicon_path, cfg, opts.optional_silence)
    lexicon, base_phones = _expand_units(lexicon, cfg, text_path, opts.silence_phones)
    silence, nonsilence = _phone_sets(lexicon, opts.silence_phones, opts.optional_silence)
    hmm_phones = silence + nonsilence
    lexicon_disambig, max_disambig = add_disambig_symbols(lexicon)
    phones, words = _symbol_tables(lexicon, hmm_phones, max_disambig)
    table = make_pdf_table(hmm_phones, silence, opts.topology, opts.silence_topology)
    pdf_names = table.names()

    _write_tables(lang_dir, lexicon, lexicon_disambig, phones, words, silence, nonsilence, opts.optional_silence,
                  max_disambig, pdf_names)
    _write_lang_yaml(lang_dir, cfg, opts, silence, base_phones)
    L = build_lexicon_fst(lexicon, phones, words, opts.optional_silence, opts.sil_prob, disambig_loops=False)
    L_disambig = build_lexicon_fst(lexicon_disambig, phones, words, opts.optional_silence, opts.sil_prob,
                                   disambig_loops=True)
    H = build_h([phones[p] for p in hmm_phones], table)
    save_fsa(L, lang_dir / "L.pt")
    save_fsa(L_disambig, lang_dir / "L_disambig.pt")
    save_fsa(H, lang_dir / "H.pt")
    log.info(
        "lang dir %s: %d words, %d phones, %d disambig symbols, %d pdfs (%s topology); H %d arcs, L %d arcs",
        lang_dir, len({w for w, _ in lexicon}), len(hmm_phones), max_disambig + 1, len(pdf_names),
        opts.topology.name, H.num_arcs, L.num_arcs,
    )
    return LangDir.load(lang_dir)


@dataclass
class _LangOptions:
    """The checked scalar keys of a lang config (:func:`prepare_lang`)."""

    silence_phones: list[str]
    optional_silence: str
    sil_prob: float
    topology: Topology
    silence_topology: Topology


def _lang_options(cfg: dict) -> _LangOptions:
    """Checks the keys and reads silence phones, silence probability and topologies.

    Raises:
      LexiconError: if the optional silence is not a silence phone.
    """
    # Typos fail here; commands check the whole file with LangConfig (asr.config.load_typed_config).
    check_keys(LangConfig, cfg, "lang config")
    silence_phones = list(require(cfg, "silence_phones", "lang config"))
    optional_silence = require(cfg, "optional_silence", "lang config")
    sil_prob = float(require(cfg, "sil_prob", "lang config"))
    topo = topology_from_config(require(cfg, "topology", "lang config"))
    silence_topo = topology_from_config(cfg.get("silence_topology", cfg["topology"]))
    if optional_silence not in silence_phones:
        raise LexiconError(f"optional_silence '{optional_silence}' is not in silence_phones {silence_phones}")
    return _LangOptions(silence_phones, optional_silence, sil_prob, topo, silence_topo)


def _lexicon_with_unk(lexicon_path: str | Path, cfg: dict, optional_silence: str) -> Lexicon:
    """The lexicon, with ``<UNK>`` added (pronounced ``unk_pron``) when it has none."""
    lexicon = read_lexicon(lexicon_path)
    if not any(w == UNK for w, _ in lexicon):
        # OOV words in training text map to <UNK>; without a pronunciation of
        # its own it is modelled as silence-like noise.
        unk_pron = cfg.get("unk_pron", [optional_silence])
        lexicon.append((UNK, list(unk_pron) if isinstance(unk_pron, list) else unk_pron.split()))
    return lexicon


def _expand_units(
    lexicon: Lexicon, cfg: dict, text_path: str | Path | None, silence_phones: list[str]
) -> tuple[Lexicon, dict[str, str]]:
    """Rewrites the lexicon's phones into the config's units (``context``, then ``position_dependent``).

    Returns:
      The lexicon over units and each unit's base phone (empty without expansion).
    """
    base_phones: dict[str, str] = {}
    context_cfg = cfg.get("context")
    if context_cfg:
        if text_path is None:
            raise LexiconError("lang config has 'context': give the training text (asr prepare-lang --text)")
        min_count = float(require(context_cfg, "min_count", "lang config 'context'"))
        mono_phones = _lexicon_phones(lexicon)
        lexicon, base_phones = expand_lexicon(lexicon, read_word_counts(text_path), min_count, silence_phones)
        log.info(
            "word-internal context: %d monophones -> %d units (min_count %g, counts from %s)",
            len(mono_phones), len(_lexicon_phones(lexicon)), min_count, text_path,
        )
    if _position_dependent(cfg):
        mono_phones = _lexicon_phones(lexicon)
        lexicon, base_phones = position_dependent_lexicon(lexicon, silence_phones, base_phones)
        log.info(
            "word-position-dependent phones: %d phones -> %d", len(mono_phones), len(_lexicon_phones(lexicon)),
        )
    return lexicon, base_phones


def _lexicon_phones(lexicon: Lexicon) -> set[str]:
    return {p for _, pron in lexicon for p in pron}


def _position_dependent(cfg: dict) -> bool:
    """The config's ``position_dependent`` (YAML true/false only)."""
    position_dependent = cfg.get("position_dependent", False)
    if not isinstance(position_dependent, bool):
        # bool("false") is True: take only YAML's true/false
        raise LexiconError(f"lang config: position_dependent must be true or false, got {position_dependent!r}")
    return position_dependent


def _phone_sets(lexicon: Lexicon, silence_phones: list[str], optional_silence: str) -> tuple[list[str], list[str]]:
    """(silence, nonsilence) phones of the lang: the configured silence phones the lexicon uses
    (and the optional silence), in config order; the others sorted."""
    lex_phones = _lexicon_phones(lexicon)
    nonsilence = sorted(lex_phones - set(silence_phones))
    silence = [p for p in silence_phones if p in lex_phones or p == optional_silence]
    return silence, nonsilence


def _symbol_tables(lexicon: Lexicon, hmm_phones: list[str], max_disambig: int) -> tuple[SymbolTable, SymbolTable]:
    """phones.txt (``<eps>``, phones, ``#0``..``#max_disambig``) and words.txt (``<eps>``, words, ``#0 <s> </s>``)."""
    phone_syms = [EPS] + hmm_phones + [f"#{i}" for i in range(max_disambig + 1)]
    phones = SymbolTable({p: i for i, p in enumerate(phone_syms)})
    word_list = sorted({w for w, _ in lexicon})
    words = SymbolTable({w: i for i, w in enumerate([EPS] + word_list + ["#0", "<s>", "</s>"])})
    return phones, words


def _write_tables(
    lang_dir: Path, lexicon: Lexicon, lexicon_disambig: Lexicon, phones: SymbolTable, words: SymbolTable,
    silence: list[str], nonsilence: list[str], optional_silence: str, max_disambig: int, pdf_names: list[str],
) -> None:
    """Writes the lexicons, symbol tables, ``phones/*.txt`` and ``pdfs.txt``."""
    from asr.fileio import atomic_write_text

    lang_dir.mkdir(parents=True, exist_ok=True)
    (lang_dir / "phones").mkdir(exist_ok=True)
    write_lexicon(lexicon, lang_dir / "lexicon.txt")
    write_lexicon(lexicon_disambig, lang_dir / "lexicon_disambig.txt")
    phones.write(lang_dir / "phones.txt")
    words.write(lang_dir / "words.txt")
    atomic_write_text(lang_dir / "phones/silence.txt", "".join(f"{p}\n" for p in silence))
    atomic_write_text(lang_dir / "phones/nonsilence.txt", "".join(f"{p}\n" for p in nonsilence))
    atomic_write_text(lang_dir / "phones/optional_silence.txt", f"{optional_silence}\n")
    atomic_write_text(lang_dir / "phones/disambig.txt", "".join(f"#{i}\n" for i in range(max_disambig + 1)))
    atomic_write_text(lang_dir / "pdfs.txt", "".join(f"{n} {i}\n" for i, n in enumerate(pdf_names, 1)))


def _write_lang_yaml(lang_dir: Path, cfg: dict, opts: _LangOptions, silence: list[str],
                     base_phones: dict[str, str]) -> None:
    """``lang.yaml``: the config as used (the silence phones present, topologies, unit expansion)."""
    context_cfg = cfg.get("context")
    save_config(
        {
            "silence_phones": silence,
            "optional_silence": opts.optional_silence,
            "sil_prob": opts.sil_prob,
            "topology": opts.topology.to_config(),
            "silence_topology": opts.silence_topology.to_config(),
            **({"context": dict(context_cfg)} if context_cfg else {}),
            **({"position_dependent": True} if _position_dependent(cfg) else {}),
            **({"base_phones": base_phones} if base_phones else {}),
        },
        lang_dir / "lang.yaml",
    )
