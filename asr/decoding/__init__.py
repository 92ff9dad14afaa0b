"""Decoding with HLG: lattices, 1-best, word timings, LM-weight sweeps and rescoring."""
