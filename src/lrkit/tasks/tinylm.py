"""``tinylm``: a byte-level transformer language model on Python's own standard library.

The text is on every machine without a download: the ``*.py`` files of the running
Python's standard library (``sysconfig.get_paths()["stdlib"]``), without test folders,
``site-packages`` and generated tables (``encodings/``, ``pydoc_data/``). Files are taken
in a fixed pseudo-random order (sha256 of their relative path) until ``corpus_bytes`` bytes
are read (the last file cut), each followed by a zero byte as a file separator. A file
belongs to the validation split when the sha256 of its path says so (``val_fraction`` of
the files on average), so the split of a file never depends on the other files, the cap or
the Python version; :meth:`TinyLM.describe` records every file, its bytes and hash and the
sha256 of both splits, so a result says which text it was trained on (different Python
versions ship different standard libraries: the hashes make that visible).

The model is a decoder-only transformer over the 256 byte values (pre-norm blocks,
causal self-attention, a 4x GELU MLP, learned positions, the output layer tied to the
input embedding), initialised from the seed alone (normal, std 0.02, residual projections
scaled by 1/sqrt(2 x layers)). Training batch ``step`` is ``batch_size`` windows of
``context + 1`` bytes at offsets drawn from a generator seeded by ``(seed, step)``: random
access, so a resumed run starting at step ``k`` sees exactly the batches of an
uninterrupted one. The validation loss is the mean cross-entropy in nats per byte over a
fixed set of ``val_windows`` evenly spaced windows of the validation text (the same for
every seed and run); ``val_bpb`` is the same in bits per byte.

Example (tiny settings; a default run, 3000 updates of a 120,576-parameter model, takes
about 1.5 minutes on one idle CPU thread: 24-31 ms per update):

    >>> import torch
    >>> task = TinyLM(context=16, width=16, layers=1, heads=2, batch_size=4,
    ...               steps=5, corpus_bytes=150_000, val_windows=8)
    >>> run = task.build(seed=0)
    >>> opt = torch.optim.AdamW(run.param_groups(), lr=3e-3)
    >>> for step in range(task.steps):
    ...     opt.zero_grad()
    ...     run.loss(run.batch(step)).backward()
    ...     opt.step()
    >>> sorted(run.evaluate())
    ['val_bpb', 'val_loss']
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lrkit._validate import bad, check_int, check_number

__all__ = ["Corpus", "TinyLM", "TinyLMRun", "load_corpus"]

#: folder names never entered (tests, installed packages, caches)
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages",
                       "__pycache__"})
#: top-level folders of generated tables rather than code (codec maps, pydoc's topics)
SKIP_TOP = frozenset({"encodings", "pydoc_data"})
#: the byte that ends every file in the corpus stream
SEPARATOR = b"\0"
VOCAB = 256


def _digest(*parts: str | bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.digest()


def _is_val(path: str, val_fraction: float) -> bool:
    """A file's split from its relative path alone (a uniform number in [0, 1) from sha256)."""
    u = int.from_bytes(_digest("tinylm-split", path)[:8], "big") / 2.0**64
    return u < val_fraction


@dataclass(frozen=True)
class Corpus:
    """The text of one ``(root, corpus_bytes, val_fraction)``: bytes of both splits and the
    manifest (relative path, bytes used, sha256 of those bytes, split) of every file."""

    root: str
    train: bytes
    val: bytes
    files: tuple[tuple[str, int, str, str], ...]

    def describe(self) -> dict[str, Any]:
        manifest = "".join(f"{s} {n} {h} {p}\n" for p, n, h, s in self.files)
        return {
            "source": "python-stdlib" if self.root == _stdlib() else "folder",
            "root": self.root,
            "python": ".".join(map(str, sys.version_info[:3])),
            "bytes": len(self.train) + len(self.val),
            "train_bytes": len(self.train),
            "val_bytes": len(self.val),
            "train_sha256": hashlib.sha256(self.train).hexdigest(),
            "val_sha256": hashlib.sha256(self.val).hexdigest(),
            "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest(),
            "separator": "one zero byte after each file",
            "files": [{"path": p, "bytes": n, "sha256": h, "split": s}
                      for p, n, h, s in self.files],
        }


def _list_files(root: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not (rel == Path() and d in SKIP_TOP)]
        found += [(rel / n).as_posix() for n in names if n.endswith(".py")]
    return sorted(found, key=lambda p: (_digest("tinylm-order", p), p))


_CACHE: dict[tuple[str, int, float], Corpus] = {}


def _stdlib() -> str:
    return str(Path(sysconfig.get_paths()["stdlib"]).resolve())


def load_corpus(root: str | None, corpus_bytes: int, val_fraction: float) -> Corpus:
    """Read (once per process) the first ``corpus_bytes`` bytes of the ordered files."""
    base = Path(_stdlib() if root is None else root).resolve()
    key = (str(base), corpus_bytes, val_fraction)
    if key in _CACHE:
        return _CACHE[key]
    if not base.is_dir():
        raise bad("root", root, "a folder holding .py files")
    train, val = bytearray(), bytearray()
    files: list[tuple[str, int, str, str]] = []
    left = corpus_bytes
    for path in _list_files(base):
        if left <= 0:
            break
        if not (base / path).is_file():  # a dangling link
            continue
        data = ((base / path).read_bytes() + SEPARATOR)[:left]
        left -= len(data)
        split = "val" if _is_val(path, val_fraction) else "train"
        (val if split == "val" else train).extend(data)
        files.append((path, len(data), hashlib.sha256(data).hexdigest(), split))
    corpus = Corpus(str(base), bytes(train), bytes(val), tuple(files))
    _CACHE[key] = corpus
    return corpus


class _Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.out = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, c // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        out: torch.Tensor = x + self.out(F.gelu(self.fc(self.ln2(x))))
        return out


class ByteTransformer(nn.Module):
    """Decoder-only transformer over bytes; ``forward`` gives next-byte logits."""

    def __init__(self, context: int, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.pos = nn.Parameter(torch.zeros(context, width))
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """GPT-2 style initialisation, drawn in a fixed order from ``generator`` only."""
        layers = len(self.blocks)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:  # biases and norm gains
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                else:
                    std = 0.02 / math.sqrt(2 * layers) if name.endswith(
                        ("proj.weight", "out.weight")) else 0.02
                    p.normal_(0.0, std, generator=generator)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx) + self.pos[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln(x), self.embed.weight)


def _tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


class TinyLMRun:
    """One training run of :class:`TinyLM` (see the module docstring)."""

    def __init__(self, task: TinyLM, seed: int, corpus: Corpus) -> None:
        self.task, self.seed = task, seed
        with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG
            self.model = ByteTransformer(task.context, task.width, task.layers, task.heads)
        self.model.reset_parameters(torch.Generator().manual_seed(seed))
        self._train = _tensor(corpus.train)
        self._val = _tensor(corpus.val)
        span = torch.arange(task.context + 1)
        starts = torch.linspace(0, len(corpus.val) - task.context - 1, task.val_windows,
                                dtype=torch.float64)
        self._val_idx = starts.round().long()[:, None] + span
        self._span = span

    def param_groups(self) -> list[dict[str, Any]]:
        """Matrices (decayed with the optimizer's weight decay) and the rest (no decay)."""
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        other = [p for p in self.model.parameters() if p.dim() < 2]
        return [{"params": decay}, {"params": other, "weight_decay": 0.0}]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-byte targets of update ``step``: a function of (seed, step) only."""
        step = check_int("step", step, low=0)
        key = int.from_bytes(_digest("tinylm-batch", str(self.seed), str(step))[:8], "big")
        g = torch.Generator().manual_seed(key >> 1)
        high = len(self._train) - self.task.context
        starts = torch.randint(0, high, (self.task.batch_size,), generator=g)
        w = self._train[starts[:, None] + self._span].long()
        return w[:, :-1], w[:, 1:]

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean next-byte cross-entropy (nats per byte)."""
        x, y = batch
        logits = self.model(x)
        return F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))

    def evaluate(self) -> dict[str, float]:
        """``val_loss`` (nats per byte) and ``val_bpb`` (bits per byte) on the fixed windows."""
        total, count = 0.0, 0
        with torch.no_grad():
            for chunk in torch.split(self._val_idx, self.task.eval_batch):
                w = self._val[chunk].long()
                logits = self.model(w[:, :-1])
                total += float(F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1),
                                               reduction="sum"))
                count += w[:, 1:].numel()
        val = total / count
        return {"val_loss": val, "val_bpb": val / math.log(2)}


class TinyLM:
    """The ``tinylm`` task: every size a keyword (``--task-arg width=64``).

    Args:
        context: bytes of context per window.
        width: model width (a multiple of ``heads``).
        layers: transformer blocks.
        heads: attention heads.
        batch_size: windows per update.
        steps: default horizon in updates.
        eval_every: evaluate every this many updates (and at the end).
        corpus_bytes: bytes of text read (both splits together).
        val_fraction: expected fraction of files held out for validation.
        val_windows: validation windows (fixed, evenly spaced over the validation text).
        eval_batch: windows per forward pass when evaluating (memory only, not results).
        root: the folder of ``.py`` files (default: the standard library).
    """

    name = "tinylm"
    metric = "val_loss"
    higher_is_better = False

    def __init__(
        self,
        *,
        context: int = 64,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        batch_size: int = 16,
        steps: int = 3000,
        eval_every: int = 250,
        corpus_bytes: int = 4_000_000,
        val_fraction: float = 0.1,
        val_windows: int = 512,
        eval_batch: int = 128,
        root: str | None = None,
    ) -> None:
        self.context = check_int("context", context, low=2)
        self.width = check_int("width", width, low=1)
        self.layers = check_int("layers", layers, low=1)
        self.heads = check_int("heads", heads, low=1)
        if self.width % self.heads:
            raise bad("width", width, f"a multiple of heads={self.heads}")
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.steps = check_int("steps", steps, low=1)
        self.eval_every = check_int("eval_every", eval_every, low=1)
        self.corpus_bytes = check_int("corpus_bytes", corpus_bytes, low=1)
        self.val_fraction = check_number("val_fraction", val_fraction, low=0, high=1,
                                         low_open=True, high_open=True)
        self.val_windows = check_int("val_windows", val_windows, low=1)
        self.eval_batch = check_int("eval_batch", eval_batch, low=1)
        if root is not None and not isinstance(root, str | os.PathLike):
            raise bad("root", root, "a folder path or None (the standard library)")
        self.root = None if root is None else os.fspath(root)
        #: peak rates of a study: at the default sizes and 3000 updates, AdamW's best for WSD
        #: of 3e-3, 6e-3, 1e-2 and within 0.006 nats/byte of cosine's best (1e-2)
        self.lrs = {"adamw": 6e-3, "adam": 6e-3}
        #: the ``muon`` optimizer: Muon on the blocks' matrices; the learned positions (a bare
        #: 2-D table) stay on AdamW with the byte embedding (tied to the output layer)
        self.muon_exclude = ("pos",)
        warm = max(1, self.steps // 20)
        #: the default schedules of a study (horizon: the run's steps), pretraining-style
        self.schedules = {
            "cosine": f"warmup({warm}) then cosine(end=0)",
            "wsd": f"wsd(warmup_steps={warm}, decay_fraction=0.2)",
            "linear": f"warmup({warm}) then linear(end=0)",
            "inverse-sqrt": f"warmup({warm}) then rsqrt(timescale={warm})",
            "constant": f"warmup({warm}) then constant",
        }

    def corpus(self) -> Corpus:
        """The text (read once per process), checked to be long enough for ``context``."""
        corpus = load_corpus(self.root, self.corpus_bytes, self.val_fraction)
        for split, data in (("train", corpus.train), ("validation", corpus.val)):
            if len(data) <= self.context + 1:
                raise bad("corpus_bytes", self.corpus_bytes,
                          f"enough text for a {split} split longer than context + 1 = "
                          f"{self.context + 1} bytes (it has {len(data)} from "
                          f"{len(corpus.files)} files)")
        return corpus

    def describe(self) -> dict[str, Any]:
        """Provenance: the text (files, sizes, sha256 of each split) and every setting."""
        w, n = self.width, self.layers  # embedding, positions, final norm; per block:
        params = VOCAB * w + self.context * w + 2 * w + n * (12 * w * w + 13 * w)
        return {
            "task": self.name,
            "metric": self.metric,
            "settings": {k: getattr(self, k) for k in (
                "context", "width", "layers", "heads", "batch_size", "steps", "eval_every",
                "corpus_bytes", "val_fraction", "val_windows", "root")},
            "parameters": params,
            "corpus": self.corpus().describe(),
            "torch": torch.__version__,
        }

    def __repr__(self) -> str:
        return (f"TinyLM(context={self.context}, width={self.width}, layers={self.layers}, "
                f"heads={self.heads}, batch_size={self.batch_size}, steps={self.steps}, "
                f"corpus_bytes={self.corpus_bytes})")

    def build(self, seed: int) -> TinyLMRun:
        """A fresh run: the weights and the batch of every step follow from ``seed``."""
        return TinyLMRun(self, check_int("seed", seed), self.corpus())
