"""Prompt words and their token positions, for the word maps (``CaptureSpec.words``).

SDXL's cross-attention attends over ONE sequence of 77 positions: the pipeline tokenizes the
prompt with both CLIP tokenizers (``tokenizer``, ``tokenizer_2``; same vocabulary and merges,
they differ only in the padding token) and concatenates the two encoders' hidden states along
the feature axis, position by position. So the positions of a prompt's tokens are those of
``tokenizer`` (the resolver checks that ``tokenizer_2`` gives the same ids on the non-padding
part when the pipeline has it).

A *word* is a run of sub-word tokens closed by a token ending in ``</w>`` (CLIP's BPE marks word
ends), e.g. ``watercolor`` may be ``water`` + ``color</w>``; its map is the sum of its tokens'
maps. Punctuation tokens are words of their own (``,``). The start and end tokens are the words
``<start>`` and ``<end>``; padding after ``<end>`` is never a word. A word that occurs several
times in the prompt is one word: the sum over all its positions.
"""
from __future__ import annotations

from dataclasses import dataclass

from fastface.method.config import ConfigError

__all__ = ["START", "END", "PromptWords", "prompt_words", "select_words"]

START, END = "<start>", "<end>"


@dataclass(frozen=True)
class PromptWords:
    """The words of one prompt in order of first appearance, each with its token positions."""

    prompt: str
    words: tuple[str, ...]
    positions: tuple[tuple[int, ...], ...]
    length: int  # the token sequence length (77)

    def of(self, word: str) -> tuple[int, ...]:
        return self.positions[self.words.index(word)]


def _ids(tokenizer, prompt: str) -> list[int]:
    return tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids


def prompt_words(tokenizer, prompt: str, tokenizer_2=None) -> PromptWords:
    """Group the prompt's token positions into words (see the module docstring)."""
    ids = _ids(tokenizer, prompt)
    eos = tokenizer.eos_token_id
    end = ids.index(eos, 1) if eos in ids[1:] else len(ids) - 1
    if tokenizer_2 is not None:
        ids2 = _ids(tokenizer_2, prompt)
        if ids2[: end + 1] != ids[: end + 1]:
            raise ValueError("the two tokenizers give different token ids for the prompt; word positions are "
                             "ambiguous")
    tokens = tokenizer.convert_ids_to_tokens(ids[1:end])
    found: dict[str, list[int]] = {START: [0]}
    parts, pos = [], []
    for i, tok in enumerate(tokens, start=1):
        parts.append(tok)
        pos.append(i)
        if tok.endswith("</w>") or i == end - 1:
            word = "".join(parts).replace("</w>", "")
            found.setdefault(word, []).extend(pos)
            parts, pos = [], []
    found.setdefault(END, []).append(end)
    return PromptWords(prompt, tuple(found), tuple(tuple(v) for v in found.values()), len(ids))


def select_words(selection, words: PromptWords) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """(words, positions) of a ``CaptureSpec.words`` selection ('all' or names) in a prompt;
    a name the prompt does not have is a :class:`ConfigError` naming the prompt's words."""
    if selection == "all":
        return words.words, words.positions
    missing = [w for w in selection if w not in words.words]
    if missing:
        raise ConfigError(
            f"capture words {missing} are not in the prompt {words.prompt!r}; its words are "
            f"{[w for w in words.words]} (give some of them, or 'all')")
    return tuple(selection), tuple(words.of(w) for w in selection)
