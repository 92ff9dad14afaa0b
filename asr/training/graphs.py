"""Numerator graphs: an utterance's transcript -> L -> H, over HMM states.

These are the graphs of flat-start training (maximum likelihood over all
state sequences of the transcript) and of forced alignment (their Viterbi
path).  Optional silence between words comes from L.
"""

from __future__ import annotations

import logging

import k2

from asr.lang.lang_dir import UNK, LangDir

log = logging.getLogger("asr.training.graphs")


class NumeratorGraphCompiler:
    """Compiles transcripts into numerator FSAs over pdf ids.

    The result has pdf ids as labels, word ids as (ragged) ``aux_labels`` on
    the arc where each word's first phone starts, and a ``phones`` attribute
    holding the phone id on each arc that enters a phone (0 elsewhere).
    """

    def __init__(self, lang: LangDir):
        self.lang = lang
        self.words = lang.words
        self.L_inv = k2.arc_sort(lang.load_graph("L").invert())
        # A lang with a tree has no H: its graphs go through the tree (LangDir.compose_h).
        self.H = k2.arc_sort(lang.load_graph("H")) if lang.context is None else None
        self.unk_id = self.words[UNK]

    def words_to_ids(self, words: list[str]) -> tuple[list[int], int]:
        """Maps words to ids; OOV words become ``<UNK>``.

        Returns:
          The ids and the number of OOV words.
        """
        ids, oov = [], 0
        for w in words:
            if w in self.words:
                ids.append(self.words[w])
            else:
                ids.append(self.unk_id)
                oov += 1
        return ids, oov

    def batch_word_ids(self, transcripts: list[list[str]]) -> tuple[list[list[int]], int]:
        """Word ids of a batch of transcripts and the number of OOV words in it."""
        pairs = [self.words_to_ids(words) for words in transcripts]
        return [ids for ids, _ in pairs], sum(oov for _, oov in pairs)

    def _phone_graph(self, ids: list[int]) -> k2.Fsa:
        """One transcript -> its epsilon-free phone-level FSA (word ids as ragged aux labels)."""
        word_fsa = k2.add_epsilon_self_loops(k2.linear_fsa(ids))
        fsa = k2.intersect(self.L_inv, word_fsa, treat_epsilons_specially=False)
        return k2.connect(k2.remove_epsilon(k2.arc_sort(k2.connect(k2.invert(fsa)))))

    def phone_graphs(self, word_ids: list[list[int]]) -> k2.Fsa:
        """Transcripts -> phone-level FSAs (epsilon-free, with epsilon self-loops)."""
        word_fsa = k2.add_epsilon_self_loops(k2.linear_fsa(word_ids))
        fsa = k2.intersect(self.L_inv, word_fsa, treat_epsilons_specially=False)
        fsa = k2.arc_sort(k2.connect(k2.invert(fsa)))
        return k2.arc_sort(k2.remove_epsilon_and_add_self_loops(fsa))

    def compile(self, word_ids: list[list[int]]) -> k2.Fsa:
        """Builds the numerator graphs (an FsaVec) for a batch of transcripts."""
        if self.H is None:
            return k2.create_fsa_vec([self.lang.compose_h(self._phone_graph(ids)) for ids in word_ids])
        phone_fsa = self.phone_graphs(word_ids)
        num = k2.compose(self.H, phone_fsa, treat_epsilons_specially=False, inner_labels="phones")
        return k2.arc_sort(k2.connect(num))

