"""Classification heads of stadapter-mm (registered in MMAction2's MODELS)."""
from .verb_noun_head import VerbNounHead, describe_prediction, topk_actions

__all__ = ['VerbNounHead', 'describe_prediction', 'topk_actions']
