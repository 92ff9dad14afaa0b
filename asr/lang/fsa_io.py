"""Saving and loading k2 FSAs as plain tensors.

``torch.load(weights_only=True)`` refuses pickled k2 objects, and a pickle
from a downloaded model dir could run code.  So an FSA is stored as a dict of
plain tensors: k2's arc tensor, tensor attributes as they are, and ragged
attributes (such as HLG's ``aux_labels``) as ``values`` plus ``row_splits``.
"""

from __future__ import annotations

from pathlib import Path

import k2
import torch

from asr.errors import AsrError
from asr.fileio import atomic_torch_save, safe_torch_load

_FORMAT = "asr.k2-fsa.v1"
_RAGGED = "__ragged__"


def fsa_to_tensors(fsa: k2.Fsa) -> dict[str, torch.Tensor | str | list[str]]:
    """Returns a dict of plain tensors that :func:`fsa_from_tensors` inverts."""
    out: dict = {"format": _FORMAT, "arcs": k2.Fsa.as_dict(fsa)["arcs"].clone(), "ragged": []}
    attrs = list(fsa.named_tensor_attr(include_scores=False)) + list(fsa.named_non_tensor_attr())
    for name, value in attrs:
        if isinstance(value, torch.Tensor):
            out[name] = value.detach().clone()
        elif isinstance(value, k2.RaggedTensor):
            assert value.num_axes == 2, "only 2-axis ragged attributes are supported"
            out[name + ".values"] = value.values.clone()
            out[name + ".row_splits"] = value.shape.row_splits(1).clone()
            out["ragged"].append(name)
        # Symbol tables and other Python objects are not stored: the lang
        # dir's phones.txt / words.txt are the source of truth.
    return out


def fsa_from_tensors(d: dict, source: str = "<dict>") -> k2.Fsa:
    """Rebuilds an FSA saved by :func:`fsa_to_tensors`.

    Raises:
      AsrError: if ``d`` is not in this format.
    """
    if not isinstance(d, dict) or d.get("format") != _FORMAT or "arcs" not in d:
        raise AsrError(f"{source}: not an asr FSA file (expected format {_FORMAT})")
    ragged = set(d.get("ragged", []))
    inp: dict = {"arcs": d["arcs"]}
    for key, value in d.items():
        if key in ("format", "arcs", "ragged") or "." in key:
            continue
        inp[key] = value
    for name in ragged:
        shape = k2.ragged.create_ragged_shape2(row_splits=d[name + ".row_splits"].to(torch.int32))
        inp[name] = k2.RaggedTensor(shape, d[name + ".values"].to(torch.int32))
    return k2.Fsa.from_dict(inp)


def save_fsa(fsa: k2.Fsa, path: str | Path) -> None:
    """Saves ``fsa`` atomically as plain tensors."""
    atomic_torch_save(fsa_to_tensors(fsa), path)


def load_fsa(path: str | Path) -> k2.Fsa:
    """Loads an FSA saved by :func:`save_fsa`, never running code from it.

    Raises:
      AsrError: if the file is missing, unsafe or not an FSA.
    """
    return fsa_from_tensors(safe_torch_load(path), str(path))


def arcs_to_fsa(arcs: list[tuple[int, int, int, float]]) -> k2.Fsa:
    """An FSA from ``(src, dst, label, score)`` arcs sorted by source state.

    The final state is the highest-numbered one; arcs into it carry label -1.
    """
    if not arcs:
        return k2.Fsa.from_str("")  # the empty FSA (no states)
    t = torch.tensor([a[:3] for a in arcs], dtype=torch.int32)
    scores = torch.tensor([a[3] for a in arcs], dtype=torch.float32)
    return k2.Fsa(torch.cat([t, scores.view(torch.int32).unsqueeze(1)], dim=1))
