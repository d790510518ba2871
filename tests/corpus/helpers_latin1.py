# -*- coding: latin-1 -*-
"""A helper saved in latin-1: the import hook must decode it like Python does."""

WORD = "café crème"


def vowels(text):
    found = []
    for ch in text:
        if ch in "aeiouéèê":
            found.append(ch)
    return found
