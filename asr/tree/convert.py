"""From a monophone lang to its tree: the context-dependent lang dir, alignments and the initial output layer.

- :func:`write_tree_lang`: a copy of a lang dir with the tree in it (``tree.yaml``),
  whose pdfs are the tree's leaves; its graphs go through the tree
  (:mod:`asr.lang.context_graph`).
- :func:`convert_alignments`: Kaldi's ``convert-ali``: every frame of a
  monophone alignment gets the leaf of its (context window, pdf class).

Starting a tree model from a monophone model's output rows is
:func:`asr.lang.context_graph.leaf_source_pdfs`, through ``pdf_map``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from asr.config import load_config, save_config
from asr.errors import DataDirError, LexiconError
from asr.fileio import atomic_write_text
from asr.lang.lang_dir import TREE_FILE, LangDir
from asr.training.align import read_alignments, write_alignment_ark
from asr.tree.stats import pdf_continues, pdf_phone_and_class, utterance_events
from asr.tree.tree import Tree

log = logging.getLogger("asr.tree.convert")

#: Files of a lang dir that a tree lang does not keep: H is built per graph through the tree.
MONOPHONE_ONLY = ("H.pt",)


def leaf_names(tree: Tree, phones) -> list[str]:
    """A readable name per leaf: the first phone of its root, then the leaf id (``AA_B.leaf12``)."""
    names = [f"leaf{i}" for i in range(tree.num_leaves)]
    for root in tree.roots:
        stack = [root.node]
        while stack:
            node = tree.nodes[stack.pop()]
            if len(node) == 1:
                names[node[0]] = f"{phones.get(root.phones[0])}.leaf{node[0]}"
            else:
                stack += [node[2], node[3]]
    return names


def write_tree_lang(lang_dir: str | Path, tree_path: str | Path, out_dir: str | Path) -> LangDir:
    """Copies ``lang_dir`` to ``out_dir`` with ``tree.yaml`` in it; pdfs become the tree's leaves.

    Raises:
      TreeError: if the tree speaks of phones the lang does not have.
    """
    src, out = Path(lang_dir), Path(out_dir)
    lang = LangDir.load(src)
    if lang.context is not None:
        raise LexiconError(f"{src}: already has a tree; give the monophone lang the tree was built in")
    tree = Tree.load(tree_path)
    tree.check_lang(lang.phones.sym2id, str(tree_path))
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(*MONOPHONE_ONLY))
    tree.save(tmp / TREE_FILE)
    names = leaf_names(tree, lang.phones)
    atomic_write_text(tmp / "pdfs.txt", "".join(f"{n} {i}\n" for i, n in enumerate(names, 1)))
    cfg = load_config(src / "lang.yaml")
    cfg["tree"] = {"source": str(Path(tree_path)), "leaves": tree.num_leaves,
                   "context_width": tree.context_width, "central_position": tree.central_position}
    save_config(cfg, tmp / "lang.yaml")
    tmp.rename(out)
    log.info("%s: lang %s with the %d-leaf tree %s", out, src, tree.num_leaves, tree_path)
    return LangDir.load(out)


def alignment_leaves(pdfs: torch.Tensor, mono: LangDir, tree: Tree) -> torch.Tensor:
    """(T,) pdf ids of ``mono`` -> (T,) pdf ids of the tree (leaf + 1), frame by frame."""
    pdf_phone, pdf_class = pdf_phone_and_class(mono)
    contexts, classes = utterance_events(pdfs, pdf_phone, pdf_class, pdf_continues(mono),
                                         tree.context_width, tree.central_position)
    return tree.leaf_ids(contexts, classes) + 1


def convert_alignments(ali_dir: str | Path, mono_lang: str | Path, tree_lang: str | Path, out_dir: str | Path) -> int:
    """``asr convert-ali``: a monophone alignment dir -> the same frames in the tree's pdf ids.

    Writes ``out_dir/ali.ark``, ``ali.scp`` and ``info.yaml`` (the source's,
    plus ``lang_dir`` and ``converted_from``).  Returns the number of utterances.

    Raises:
      DataDirError: if an alignment has pdf ids outside the monophone lang.
    """
    ali_dir, out = Path(ali_dir), Path(out_dir)
    mono, target = LangDir.load(mono_lang), LangDir.load(tree_lang)
    if mono.context is not None or target.context is None:
        raise LexiconError(f"convert-ali: {mono_lang} must be a monophone lang and {tree_lang} a lang with a tree")
    alignments = read_alignments(ali_dir)
    num_mono = mono.num_pdfs
    converted = {}
    for utt, pdfs in alignments.items():
        if len(pdfs) == 0 or int(pdfs.min()) < 1 or int(pdfs.max()) > num_mono:
            raise DataDirError(f"{ali_dir / 'ali.ark'}: utterance '{utt}' has pdf ids outside 1..{num_mono} of {mono_lang}")
        converted[utt] = alignment_leaves(pdfs, mono, target.context.tree)
    write_alignment_ark(converted, out)
    info = load_config(ali_dir / "info.yaml") if (ali_dir / "info.yaml").is_file() else {}
    save_config({**info, "lang_dir": str(Path(tree_lang)), "converted_from": str(ali_dir)}, out / "info.yaml")
    log.info("converted %d alignments of %s to the %d leaves of %s", len(converted), ali_dir,
             target.num_pdfs, tree_lang)
    return len(converted)
