"""Corpora on disk → sentences: each split's non-blank lines as token lists.

A corpus is a folder holding `train.txt`, `valid.txt`, `test.txt` (or the canonical
`ptb.train.txt` … names), one sentence per line, UTF-8 — or a single text file (or a
folder holding just one), which is split by lines, in order: the first 90% of its
non-blank lines train, the next 5% validate, the last 5% test (`data.split_fractions`).
Blank lines are skipped. Tokens are whitespace-separated words (`data.tokenize=word`) or
Unicode characters, spaces included (`char`).
"""

from __future__ import annotations

from pathlib import Path

from lstm_sweep.errors import DataError

SPLITS = ("train", "valid", "test")


def split_path(root: Path, split: str) -> Path:
    """The file of `split` in a corpus folder: `train.txt` or PTB's `ptb.train.txt`."""
    for name in (f"{split}.txt", f"ptb.{split}.txt"):
        if (root / name).is_file():
            return root / name
    raise DataError(f"corpus {root} has no {split} split: expected {root / f'{split}.txt'} (or ptb.{split}.txt)")


def read_text(path: Path) -> str:
    """A UTF-8 file's text, without the byte-order mark some editors put first (it is no
    part of the first word)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")  # not "utf-8-sig": an error's byte offset stays the file's
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8: byte offset {err.start} (0x{raw[err.start]:02x}) cannot be decoded"
        ) from None
    return text.removeprefix("\ufeff")


def tokenize_lines(text: str, tokenize: str = "word") -> list[list[str]]:
    """The non-blank lines of a text as token lists: words, or characters with spaces kept."""
    if tokenize == "char":
        return [list(line) for line in text.splitlines() if line.strip()]
    return [tokens for tokens in (line.split() for line in text.splitlines()) if tokens]


def read_sentences(path: Path, tokenize: str = "word") -> list[list[str]]:
    sentences = tokenize_lines(read_text(path), tokenize)
    if not sentences:
        raise DataError(f"{path} is empty: it holds no tokens")
    return sentences


def split_single_file(path: Path, tokenize: str, fractions) -> dict[str, list[list[str]]]:
    """One file's lines, in order, cut into train / valid / test by `fractions`."""
    lines = read_sentences(path, tokenize)
    train_end = int(len(lines) * fractions[0])
    valid_end = train_end + int(len(lines) * fractions[1])
    corpus = {"train": lines[:train_end], "valid": lines[train_end:valid_end], "test": lines[valid_end:]}
    for split, part in corpus.items():
        if not part:
            raise DataError(
                f"{path} has {len(lines)} non-blank lines: too few for a {split} split "
                f"with data.split_fractions={list(fractions)}"
            )
    return corpus


def read_corpus(
    root: str | Path, tokenize: str = "word", split_fractions=(0.9, 0.05, 0.05)
) -> dict[str, list[list[str]]]:
    root = Path(root).expanduser()
    if root.is_file():
        return split_single_file(root, tokenize, split_fractions)
    if not root.is_dir():
        raise DataError(f"corpus folder {root} does not exist (data.root)")
    texts = sorted(root.glob("*.txt"))
    has_splits = any((root / f"{p}{s}.txt").is_file() for s in SPLITS for p in ("", "ptb."))
    if len(texts) == 1 and not has_splits:
        return split_single_file(texts[0], tokenize, split_fractions)
    return {split: read_sentences(split_path(root, split), tokenize) for split in SPLITS}
