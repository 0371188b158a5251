"""Classification heads of stadapter-mm (registered in MMAction2's MODELS).

Turning predictions into ranked names (top verbs, nouns, actions) is
inference work: see :mod:`stadapter_mm.apis.predictions`.
"""
from .verb_noun_head import VerbNounHead

__all__ = ['VerbNounHead']
