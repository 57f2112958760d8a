"""Reading corpora, the vocabulary, the window protocol, batching and the built-in corpus."""

import re

import numpy as np
import pytest
import torch

from helpers import shared_corpus, write_corpus
from lstm_sweep.data.corpus import read_corpus
from lstm_sweep.data.protocols import BatchIndices, WindowProtocol, window_tensors
from lstm_sweep.data.synthetic import MarkovSource, word_for_rank
from lstm_sweep.data.vocab import Vocab
from lstm_sweep.errors import DataError


def test_vocab_specials_first_then_words_by_frequency():
    vocab = Vocab.build([["b", "a", "c"], ["a", "c", "a"]], unk="<unk>")
    assert vocab.itos == ["<pad>", "<unk>", "<sos>", "<eos>", "a", "c", "b"]  # ties: first seen
    assert vocab.encode(["a", "zzz"]) == [4, 1]


def test_a_corpus_unk_word_stays_a_word_when_unseen_words_get_their_own_token():
    vocab = Vocab.build([["the", "<unk>", "cat"]], unk="<unk_word>")
    assert vocab.itos[:4] == ["<pad>", "<unk_word>", "<sos>", "<eos>"] and "<unk>" in vocab.stoi
    assert vocab.encode(["<unk>", "dog"]) == [vocab.stoi["<unk>"], 1]


def test_window_protocol_exact_tensors():
    vocab = Vocab.build([["a", "b", "c", "d"]], unk="<unk>")  # a=4 b=5 c=6 d=7
    pad, sos, eos = 0, 2, 3
    inputs, targets = window_tensors([["a", "b", "c", "d"], ["b"], ["x", "a"]], vocab, n_step=3)
    # <sos> a b c d <eos> → 3 windows; short sentences are left-padded to n_step + 1 = 4 tokens.
    assert inputs.tolist() == [
        [sos, 4, 5],
        [4, 5, 6],
        [5, 6, 7],
        [pad, sos, 5],
        [sos, 1, 4],
    ]
    assert targets.tolist() == [6, 7, eos, eos, eos]
    assert inputs.dtype == torch.long


def test_reads_canonical_ptb_names_and_skips_blank_lines(tmp_path):
    root = write_corpus(tmp_path / "c", " a b \n\n c\n", names={s: f"ptb.{s}.txt" for s in ("train", "valid", "test")})
    corpus = read_corpus(root)
    assert corpus["train"] == [["a", "b"], ["c"]]


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(DataError, match=f"corpus folder {tmp_path / 'nope'} does not exist"):
        read_corpus(tmp_path / "nope")


def test_missing_split_names_the_expected_file(tmp_path):
    root = write_corpus(tmp_path / "c", "a b\n")
    (root / "valid.txt").unlink()
    with pytest.raises(DataError, match=f"no valid split: expected {root / 'valid.txt'}"):
        read_corpus(root)


def test_empty_split_names_the_file(tmp_path):
    root = write_corpus(tmp_path / "c", "a b\n", test="\n  \n")
    with pytest.raises(DataError, match=f"{root / 'test.txt'} is empty"):
        read_corpus(root)


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    root = write_corpus(tmp_path / "c", "a b\n")
    (root / "train.txt").write_bytes("héllo wörld\n".encode() + b"abc \xff def\n")
    offset = len("héllo wörld\n".encode()) + 4
    with pytest.raises(DataError, match=f"{root / 'train.txt'} is not UTF-8: byte offset {offset} \\(0xff\\)"):
        read_corpus(root)


def test_penn_small_reads_with_its_documented_sizes():
    corpus = read_corpus(shared_corpus("penn_small"))
    assert [len(corpus[s]) for s in ("train", "valid", "test")] == [4206, 337, 376]
    assert [sum(map(len, corpus[s])) for s in ("train", "valid", "test")] == [89794, 6624, 7683]
    assert len(Vocab.build(corpus["train"], unk="<unk_word>")) == 7611 + 4


# ----------------------------------------------------------------------------- batching


def test_batches_cover_each_example_once_per_epoch_and_reshuffle_reproducibly():
    sampler = BatchIndices(10, 3, shuffle=True, drop_last=False, seed=7)
    epoch0 = [b.tolist() for b in sampler]
    assert sorted(i for b in epoch0 for i in b) == list(range(10)) and len(epoch0) == 4
    assert [b.tolist() for b in sampler] == epoch0  # same epoch, same order
    sampler.set_epoch(1)
    assert [b.tolist() for b in sampler] != epoch0
    other_seed = BatchIndices(10, 3, shuffle=True, drop_last=False, seed=8)
    assert [b.tolist() for b in other_seed] != epoch0


def test_drop_last_drops_only_the_partial_batch():
    sampler = BatchIndices(10, 3, shuffle=False, drop_last=True, seed=0)
    assert [b.tolist() for b in sampler] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


# ----------------------------------------------------------------------------- built-in corpus

SMALL = MarkovSource(vocab_size=300, train_tokens=4000, valid_tokens=4000, test_tokens=20000)


def test_words_are_unique_and_short_for_frequent_ranks():
    words = [word_for_rank(r) for r in range(6000)]
    assert len(set(words)) == len(words)
    assert len(words[0]) == 2 and len(words[4000]) == 4 and len(words[5000]) == 6


def test_next_distribution_is_a_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, SMALL.vocab_size + 3, size=(2, 500))
    rows = SMALL.next_distribution(a, b)
    assert rows.shape == (500, SMALL.vocab_size + 1)
    assert np.allclose(rows.sum(axis=1), 1.0) and (rows > 0).all()


def test_corpus_is_generated_once_and_identically(tmp_path):
    first = SMALL.ensure_corpus(tmp_path / "one")
    second = SMALL.ensure_corpus(tmp_path / "two")
    for split in ("train", "valid", "test"):
        assert (first / f"{split}.txt").read_bytes() == (second / f"{split}.txt").read_bytes()
    mtime = (first / "train.txt").stat().st_mtime_ns
    assert SMALL.ensure_corpus(tmp_path / "one") == first
    assert (first / "train.txt").stat().st_mtime_ns == mtime  # cached, not rewritten
    assert sum(map(len, read_corpus(first)["train"])) >= 4000


def test_oracle_scores_the_sampled_text_at_the_source_entropy(tmp_path):
    """If sampling and scoring disagreed on contexts, the NLL would sit far above the entropy."""
    corpus = read_corpus(SMALL.ensure_corpus(tmp_path))
    n_step = 3
    every_word = set(SMALL.words)
    ppl = SMALL.window_oracle_perplexity(corpus["test"], every_word, n_step)
    # The expected NLL is the mean entropy of p(· | context) over the same windows.
    vocab = Vocab(["<pad>", "<u>", "<sos>", "<eos>", *SMALL.words], unk="<u>")
    inputs, _ = window_tensors(corpus["test"], vocab, n_step)
    to_source = np.concatenate([[SMALL.PAD, -1, SMALL.SOS, SMALL.EOS], np.arange(SMALL.vocab_size)])
    rows = SMALL.next_distribution(to_source[inputs[:, -2].numpy()], to_source[inputs[:, -1].numpy()])
    entropy = -(rows * np.log(rows)).sum(axis=1).mean()
    assert abs(np.log(ppl) - entropy) < 0.05


def test_oracle_lumps_out_of_vocabulary_targets_into_one_class(tmp_path):
    corpus = read_corpus(SMALL.ensure_corpus(tmp_path))
    full = SMALL.window_oracle_perplexity(corpus["test"], set(SMALL.words), 5)
    frequent_only = set(SMALL.words[:50])
    lumped = SMALL.window_oracle_perplexity(corpus["test"], frequent_only, 5)
    assert lumped < full  # one unknown class is easier to predict than the words it hides
    assert SMALL.window_oracle_perplexity(corpus["test"], set(SMALL.words), 1) is None


def test_background_only_source_has_a_hand_computable_oracle():
    source = MarkovSource(
        vocab_size=3, first_order_weight=0.0, second_order_weight=0.0, zipf_exponent=1.0, eos_prob=0.25
    )
    w = source.words
    # p(word r) = 0.75 · (1/(r+1)) / (1 + 1/2 + 1/3); p(<eos>) = 0.25; windows of 2 tokens.
    p = [0.75 * (1 / (r + 1)) / (11 / 6) for r in range(3)]
    sentences = [[w[0], w[2]], [w[1]]]
    # <sos> w0 w2 <eos> gives windows → w2, → <eos>; <sos> w1 <eos> gives one, → <eos>.
    expected_nll = -np.mean(np.log([p[2], 0.25, 0.25]))
    assert np.isclose(source.window_oracle_perplexity(sentences, set(w), 2), np.exp(expected_nll))


@pytest.mark.parametrize(
    "windows, drop_last, says",
    [
        (0, False, "the valid split is empty: it yields no windows"),
        (3, True, "the valid split has 3 windows, fewer than one batch of data.batch_size=8 with data.drop_last=true"),
    ],
)
def test_a_split_too_small_to_batch_is_named_with_its_reason(windows, drop_last, says):
    protocol = WindowProtocol({"n_step": 5, "shuffle": False, "drop_last": drop_last})
    tensors = (torch.zeros(windows, 5, dtype=torch.long), torch.zeros(windows, dtype=torch.long))
    with pytest.raises(DataError, match=re.escape(says)):
        protocol.loader("valid", tensors, batch_size=8, train=drop_last, seed=0)
