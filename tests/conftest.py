"""Suite-wide test settings and the shared, session-scoped fixtures.

Fixtures (built at most once per test session, on first use):

- ``yesno_run`` / ``yesno``: the yesno recipe (``recipes/yesno/run.sh``) run
  into a temporary work dir (:class:`decode_fixtures.RecipeRun`: trained
  model dir, graph, decode dir).
- ``tiny``: a tiny yesno pipeline (6 utterances, lang, unigram graph, a
  2-epoch flat-start model dir; :class:`reliability_fixtures.Tiny`), much
  faster than the recipe.
- ``tiny_lang`` / ``tiny_chain_lang``: the lang dir of
  ``helpers_tiny.TINY_LEXICON`` (A = PA, B = PB, silence) with the Kaldi
  3-state topology (``lang.yaml``) or the chain topology (``lang_chain.yaml``).

They are shared by every test that asks for them: tests must not change them
(copy first, e.g. :func:`reliability_fixtures.copy_model_dir`).  Defined here
rather than imported into each test module, pytest makes one instance per
session, so the fixture modules keep no caches of their own.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

# Fuzz tests draw the same examples on every run: a CI failure can be rerun
# and a green run means the same inputs passed, not a luckier draw.
# (`pytest --hypothesis-profile explore` draws fresh random examples.)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")

# The fixture modules are imported inside the fixtures: collecting a test
# that needs none of them imports neither torch nor the recipe helpers.


@pytest.fixture(scope="session")
def yesno_run(tmp_path_factory):
    """The yesno recipe, run once per session (whatever its exit status)."""
    from decode_fixtures import run_yesno_recipe

    return run_yesno_recipe(tmp_path_factory.mktemp("yesno_recipe"))


@pytest.fixture(scope="session")
def yesno(yesno_run):
    """The yesno recipe's outputs; fails the test if the recipe failed."""
    if yesno_run.returncode != 0:
        pytest.fail(f"yesno recipe failed (exit {yesno_run.returncode}):\n{yesno_run.stderr[-3000:]}")
    return yesno_run


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny yesno pipeline of :func:`reliability_fixtures.build_tiny`."""
    from reliability_fixtures import build_tiny

    return build_tiny(tmp_path_factory.mktemp("reliability"))


@pytest.fixture(scope="session")
def tiny_lang(tmp_path_factory):
    """``helpers_tiny.TINY_LEXICON`` prepared with ``lang.yaml``: pdfs SIL_0, PA_0..2, PB_0..2."""
    from helpers_tiny import make_lang

    return make_lang(tmp_path_factory.mktemp("tiny_lang"))


@pytest.fixture(scope="session")
def tiny_chain_lang(tmp_path_factory):
    """``helpers_tiny.TINY_LEXICON`` prepared with ``lang_chain.yaml``: pdfs SIL_0, PA_0, PA_1, PB_0, PB_1."""
    from helpers_tiny import make_lang

    return make_lang(tmp_path_factory.mktemp("tiny_chain_lang"), config="lang_chain.yaml")
