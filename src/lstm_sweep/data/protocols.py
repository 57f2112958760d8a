"""The two batching protocols, each in one place: its examples, batches, loss and sampling.

- window (the course's): each sentence is wrapped in <sos> … <eos> and left-padded with
  <pad> to at least n_step + 1 tokens; every window of n_step tokens predicts the token
  after it, and the loss is that one prediction's.
- stream (the PTB literature's and PyTorch's word_language_model): a split is one token
  stream (<eos> at each line end) cut into batch_size parallel streams; each batch is bptt
  steps of them and every position is predicted; the hidden state is carried from batch
  to batch and detached (truncated BPTT).

`protocol_for(data config)` picks one; the DataModule, the LightningModule and
lstm-generate ask it rather than testing the protocol's name themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from lstm_sweep.data.vocab import EOS, SOS, Vocab
from lstm_sweep.errors import DataError

# pick(logits, may_end) -> a sampled token id (lstm-generate's temperature and bans)
Pick = Callable[[Tensor, bool], int]


# --------------------------------------------------------------------------- window protocol


def window_tensors(sentences: list[list[str]], vocab: Vocab, n_step: int) -> tuple[Tensor, Tensor]:
    """All windows of a split: inputs (N, n_step) and next-token targets (N,)."""
    pad, sos, eos = vocab.pad_id, vocab.stoi[SOS], vocab.stoi[EOS]
    flat, lengths = [], []
    for sentence in sentences:
        ids = [sos, *vocab.encode(sentence), eos]
        ids = [pad] * (n_step + 1 - len(ids)) + ids  # left-pad to at least n_step + 1
        flat.extend(ids)
        lengths.append(len(ids))
    flat_t = torch.tensor(flat, dtype=torch.long)
    lengths_t = torch.tensor(lengths)
    # Position p (the k-th token of a sentence of length L) starts a window iff k < L - n_step.
    sentence_start = torch.repeat_interleave(torch.cumsum(lengths_t, 0) - lengths_t, lengths_t)
    k = torch.arange(len(flat_t)) - sentence_start
    starts = torch.nonzero(k < torch.repeat_interleave(lengths_t - n_step, lengths_t)).squeeze(1)
    inputs = flat_t[starts[:, None] + torch.arange(n_step)]
    return inputs, flat_t[starts + n_step]


class TensorPairs(Dataset):
    """(inputs, targets) indexed by a whole batch of indices at once."""

    def __init__(self, inputs: Tensor, targets: Tensor):
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


class BatchIndices(Sampler):
    """Yields one index tensor per batch; shuffles by (seed, epoch) so every epoch is reproducible.

    `skip` batches of the first epoch it serves are left out: a run resumed mid-epoch goes
    on from where its checkpoint was, in the same order.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int, skip: int = 0):
        self.n, self.batch_size, self.shuffle, self.drop_last, self.seed = n, batch_size, shuffle, drop_last, seed
        self.epoch, self.skip = 0, skip

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at each epoch start
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        first, self.skip = self.skip, 0
        for k in range(first, len(self)):
            yield order[k * self.batch_size : (k + 1) * self.batch_size]


# --------------------------------------------------------------------------- stream protocol


def stream_tensor(sentences: list[list[str]], vocab: Vocab) -> Tensor:
    """A split as one token stream, <eos> at the end of every line."""
    eos = vocab.stoi[EOS]
    ids = []
    for sentence in sentences:
        ids.extend(vocab.encode(sentence))
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: Tensor, batch_size: int) -> Tensor:
    """(L, batch_size): the stream cut into batch_size contiguous columns (the tail dropped)."""
    length = len(stream) // batch_size
    return stream[: length * batch_size].view(batch_size, length).t().contiguous()


class InOrder(Sampler):
    """0 … n-1 every epoch, less the first `skip` of the first epoch (a run resumed mid-epoch)."""

    def __init__(self, n: int, skip: int = 0):
        self.n, self.skip = n, skip

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        first, self.skip = self.skip, 0
        yield from range(first, self.n)


class StreamBatches(Dataset):
    """Batch i: steps [i·bptt, i·bptt + T) of every column and the tokens one step later.

    Batches are (B, T) to match the window protocol's layout; the last one may be shorter.
    """

    def __init__(self, columns: Tensor, bptt: int):
        self.columns, self.bptt = columns, bptt

    def __len__(self) -> int:
        return max(0, -(-(len(self.columns) - 1) // self.bptt))

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        start = i * self.bptt
        steps = min(self.bptt, len(self.columns) - 1 - start)
        return (
            self.columns[start : start + steps].t().contiguous(),
            self.columns[start + 1 : start + 1 + steps].t().contiguous(),
        )


# --------------------------------------------------------------------------- the protocols


class WindowProtocol:
    """n_step tokens of a sentence predict the next; a batch is a set of windows."""

    def __init__(self, data_cfg):
        self.n_step = data_cfg["n_step"]
        self.shuffle, self.drop_last = data_cfg["shuffle"], data_cfg["drop_last"]

    def examples(
        self, split: str, sentences: list[list[str]], vocab: Vocab, batch_size: int
    ) -> tuple[tuple[Tensor, ...], int]:
        """A split's tensors, and how many predictions they hold."""
        inputs, targets = window_tensors(sentences, vocab, self.n_step)
        return (inputs, targets), len(targets)

    def loader(
        self, split: str, tensors: tuple[Tensor, ...], batch_size: int, train: bool, seed: int, skip: int = 0
    ) -> DataLoader:
        """Batches of the split; `skip`: of the first epoch, leave out that many (a resumed run)."""
        inputs, targets = tensors
        sampler = BatchIndices(
            len(targets),
            batch_size,
            shuffle=train and self.shuffle,
            drop_last=train and self.drop_last,
            seed=seed,
            skip=skip,
        )
        if len(targets) == 0:
            raise DataError(f"the {split} split is empty: it yields no windows")
        if len(sampler) == 0:
            raise DataError(
                f"the {split} split has {len(targets)} windows, fewer than one batch "
                f"of data.batch_size={batch_size} with data.drop_last=true"
            )
        return DataLoader(TensorPairs(inputs, targets), sampler=sampler, batch_size=None)

    @staticmethod
    def nll(model, batch, state=None) -> tuple[Tensor, int, None]:
        """Summed NLL of the batch's predictions (each window's last position, from a zero
        state) and their count; no state carries over."""
        inputs, targets = batch
        logits, _ = model(inputs, last_only=True)
        return F.cross_entropy(logits, targets, reduction="sum"), targets.numel(), None

    def oracle_perplexity(self, source, sentences: list[list[str]], vocab: Vocab) -> float | None:
        """The built-in corpus's true perplexity on this task (data/synthetic.py)."""
        return source.window_oracle_perplexity(sentences, set(vocab.itos), self.n_step)

    def continue_text(self, model, vocab: Vocab, prefix_ids: list[int], tokens: int, pick: Pick) -> list[int]:
        """`tokens` ids sampled after the prefix, each from the last n_step tokens of the
        current sentence. The protocol never teaches what follows a sentence's end, so an
        <eos> starts another continuation of the prefix on a new line."""
        sos, eos, pad = vocab.stoi[SOS], vocab.stoi[EOS], vocab.pad_id
        sentence, out = [sos, *prefix_ids], list[int]()
        while len(out) < tokens:
            context = sentence[-self.n_step :]
            logits, _ = model(torch.tensor([[pad] * (self.n_step - len(context)) + context]), last_only=True)
            token = pick(logits[0], len(sentence) > 1)  # an empty sentence cannot end
            out.append(token)
            if token == eos:
                sentence = [sos, *prefix_ids]
                out.extend(prefix_ids)
            else:
                sentence.append(token)
        return out[:tokens]


class StreamProtocol:
    """One token stream cut into parallel streams; every position predicted, state carried."""

    def __init__(self, data_cfg):
        self.bptt = data_cfg["bptt"]

    def examples(
        self, split: str, sentences: list[list[str]], vocab: Vocab, batch_size: int
    ) -> tuple[tuple[Tensor, ...], int]:
        stream = stream_tensor(sentences, vocab)
        columns = batchify(stream, batch_size)
        if len(columns) < 2:
            raise DataError(
                f"the {split} split has {len(stream)} tokens: too few for {batch_size} "
                "parallel streams (data.batch_size / data.eval_batch_size)"
            )
        return (columns,), (len(columns) - 1) * batch_size

    def loader(
        self, split: str, tensors: tuple[Tensor, ...], batch_size: int, train: bool, seed: int, skip: int = 0
    ) -> DataLoader:
        # In order, never shuffled: the hidden state runs on from batch to batch.
        batches = StreamBatches(tensors[0], self.bptt)
        return DataLoader(batches, sampler=InOrder(len(batches), skip), batch_size=None)

    @staticmethod
    def nll(model, batch, state=None) -> tuple[Tensor, int, list]:
        """Summed NLL of every position and their count, from `state` (None: zero); the state
        it returns is detached, so backpropagation stops at the batch boundary."""
        inputs, targets = batch
        logits, state = model(inputs, state)
        state = [tuple(t.detach() for t in layer) for layer in state]
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        return nll, targets.numel(), state

    @staticmethod
    def oracle_perplexity(source, sentences: list[list[str]], vocab: Vocab) -> None:
        return None  # derived for the window task only

    def continue_text(self, model, vocab: Vocab, prefix_ids: list[int], tokens: int, pick: Pick) -> list[int]:
        """`tokens` ids sampled after the prefix, the state carried; <eos> is a line end."""
        logits, state = model(torch.tensor([[vocab.stoi[EOS], *prefix_ids]]), None)  # as after a line end
        out: list[int] = []
        while len(out) < tokens:
            out.append(pick(logits[0, -1], True))
            logits, state = model(torch.tensor([[out[-1]]]), state)
        return out


PROTOCOLS: dict[str, type[WindowProtocol] | type[StreamProtocol]] = {"window": WindowProtocol, "stream": StreamProtocol}


def protocol_for(data_cfg) -> WindowProtocol | StreamProtocol:
    """The protocol a run's `data` config names."""
    return PROTOCOLS[data_cfg["protocol"]](data_cfg)
