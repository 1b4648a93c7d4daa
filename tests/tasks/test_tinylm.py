"""The tinylm task: its text and split, random-access batches, determinism, learning."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from lrkit.errors import ConfigError
from lrkit.tasks import tinylm
from lrkit.tasks.tinylm import TinyLM

TINY = {"context": 16, "width": 16, "layers": 1, "heads": 2, "batch_size": 4,
        "steps": 4, "corpus_bytes": 150_000, "val_windows": 16, "eval_batch": 16}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    # as a study worker runs; tiny models on two shared cores are many times slower with two
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task() -> TinyLM:
    return TinyLM(**TINY)


def _losses(task: TinyLM, seed: int, steps: int = 3, lr: float = 1e-2) -> list[float]:
    run = task.build(seed)
    opt = torch.optim.AdamW(run.param_groups(), lr=lr)
    out = []
    for step in range(steps):
        opt.zero_grad()
        loss = run.loss(run.batch(step))
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


def test_corpus_is_the_stdlib_files_it_names(task: TinyLM) -> None:
    d = task.describe()["corpus"]
    root = Path(d["root"])
    assert d["source"] == "python-stdlib"
    files = d["files"]
    assert sum(f["bytes"] for f in files) == d["bytes"] == TINY["corpus_bytes"]
    train, val = b"", b""
    for f in files:
        parts = Path(f["path"]).parts
        assert f["path"].endswith(".py")
        assert not {"test", "tests", "site-packages", "__pycache__"} & set(parts)
        assert parts[0] not in ("encodings", "pydoc_data")
        text = ((root / f["path"]).read_bytes() + b"\0")[: f["bytes"]]
        assert hashlib.sha256(text).hexdigest() == f["sha256"]
        if f["split"] == "val":
            val += text
        else:
            train += text
    # every file whole but the last one, which is cut at the cap
    assert all((root / f["path"]).stat().st_size + 1 == f["bytes"] for f in files[:-1])
    assert hashlib.sha256(train).hexdigest() == d["train_sha256"]
    assert hashlib.sha256(val).hexdigest() == d["val_sha256"]
    assert (len(train), len(val)) == (d["train_bytes"], d["val_bytes"])
    assert d["val_bytes"] > 0
    assert d["train_bytes"] > d["val_bytes"]


def test_describe_is_stable_and_split_by_path(task: TinyLM) -> None:
    first = task.describe()
    assert json.loads(json.dumps(first)) == first  # plain JSON data
    tinylm._CACHE.clear()  # read the files again
    assert TinyLM(**TINY).describe() == first
    assert first["settings"]["context"] == 16
    assert first["parameters"] == sum(p.numel() for p in task.build(0).model.parameters())
    # a larger cap keeps every file's split (and the order: a prefix of the files)
    bigger = TinyLM(**{**TINY, "corpus_bytes": 300_000}).describe()["corpus"]["files"]
    small = first["corpus"]["files"]
    assert [(f["path"], f["split"]) for f in bigger[: len(small)]] == [
        (f["path"], f["split"]) for f in small]
    paths = {f["split"]: set() for f in bigger}
    for f in bigger:
        paths[f["split"]].add(f["path"])
    assert not paths["train"] & paths["val"]


def test_own_root_skips_tests_and_non_python(tmp_path: Path) -> None:
    for rel, text in [("a.py", "x = 1\n" * 20), ("pkg/b.py", "y = 2\n" * 20),
                      ("tests/t.py", "bad\n"), ("pkg/test/u.py", "bad\n"),
                      ("encodings/e.py", "bad\n"), ("pkg/encodings/ok.py", "z = 3\n" * 20),
                      ("notes.txt", "bad\n")]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    corpus = tinylm.load_corpus(str(tmp_path), 10_000, 0.5)
    assert corpus.describe()["source"] == "folder"
    assert sorted(f[0] for f in corpus.files) == ["a.py", "pkg/b.py", "pkg/encodings/ok.py"]
    assert sorted(corpus.train + corpus.val) == sorted(b"x = 1\n" * 20 + b"y = 2\n" * 20
                                                       + b"z = 3\n" * 20 + b"\0" * 3)


def test_batches_are_random_access_from_the_training_text(task: TinyLM) -> None:
    run = task.build(3)
    seq = [run.batch(s) for s in range(6)]
    again = task.build(3)
    for s in (5, 2, 0):
        x, y = again.batch(s)
        assert torch.equal(x, seq[s][0])
        assert torch.equal(y, seq[s][1])
    x, y = seq[0]
    assert x.shape == y.shape == (4, 16)
    assert x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the next bytes
    train = task.corpus().train
    for row in torch.cat([x, y[:, -1:]], 1):
        assert bytes(row.tolist()) in train
    assert not torch.equal(task.build(4).batch(0)[0], x)
    assert not torch.equal(seq[1][0], x)


def test_same_seed_same_losses_other_seed_differs(task: TinyLM) -> None:
    state = torch.random.get_rng_state()
    a, b, c = _losses(task, 0), _losses(task, 0), _losses(task, 1)
    assert a == b
    assert a != c
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG untouched
    w0, w1 = task.build(0).model.embed.weight, task.build(1).model.embed.weight
    assert not torch.equal(w0, w1)


def test_initial_loss_is_uniform_over_bytes_and_training_lowers_it(task: TinyLM) -> None:
    run = task.build(0)
    before = run.evaluate()
    assert set(before) == {"val_loss", "val_bpb"}
    assert before["val_loss"] == pytest.approx(math.log(256), rel=0.01)  # small init: uniform
    assert before["val_bpb"] == pytest.approx(before["val_loss"] / math.log(2))
    losses = _losses(task, 0, steps=40, lr=1e-2)
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0


def test_evaluation_does_not_depend_on_eval_batch(task: TinyLM) -> None:
    a = task.build(0).evaluate()["val_loss"]
    b = TinyLM(**{**TINY, "eval_batch": 5}).build(0).evaluate()["val_loss"]
    assert a == pytest.approx(b, rel=1e-6)


def test_param_groups_cover_every_parameter_once(task: TinyLM) -> None:
    run = task.build(0)
    groups = run.param_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in run.model.parameters())
    assert all(p.dim() < 2 for p in groups[1]["params"])
    assert groups[1]["weight_decay"] == 0.0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"width": 10, "heads": 4}, "width=10 is invalid: expected a multiple of heads=4"),
    ({"context": 1}, "context=1 is invalid"),
    ({"val_fraction": 1.0}, "val_fraction=1.0 is invalid"),
    ({"steps": "many"}, "steps='many' is invalid"),
    ({"root": 3}, "root=3 is invalid"),
])
def test_bad_arguments_name_the_parameter(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TinyLM(**kwargs)  # type: ignore[arg-type]


def test_too_little_text_or_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus_bytes=50 is invalid: expected enough text"):
        TinyLM(**{**TINY, "corpus_bytes": 50}).build(0)
    with pytest.raises(ConfigError, match=r"root=.* is invalid: expected a folder"):
        TinyLM(root=str(tmp_path / "nowhere")).describe()
    with pytest.raises(ConfigError, match="step=-1 is invalid"):
        TinyLM(**TINY).build(0).batch(-1)


def test_default_schedules_warm_up_then_follow_their_shape() -> None:
    from lrkit.spec import parse

    t = TinyLM(steps=400)
    assert set(t.schedules) == {"cosine", "wsd", "linear", "inverse-sqrt", "constant"}
    for name, spec in t.schedules.items():
        s = parse(spec, total_steps=400)
        assert s(0) == 0.0
        assert s(20) == pytest.approx(1.0)  # warmup: 400 // 20 updates to the base rate
        assert s(400) == pytest.approx({"constant": 1.0, "inverse-sqrt": (1 + 380 / 20) ** -0.5
                                        }.get(name, 0.0), abs=1e-12)
    assert parse(t.schedules["wsd"], total_steps=400)(320) == pytest.approx(1.0)  # 20 % decay


def test_a_study_runs_tinylm_by_name_with_its_defaults() -> None:
    from lrkit.study import compare

    args = {k: v for k, v in TINY.items() if k != "steps"} | {"steps": 4, "eval_every": 2}
    study = compare("tinylm", task_args=args, schedules=["wsd"], optimizers=["adamw"],
                    seeds=[0, 1], workers=1)
    assert [r.status for r in study.runs] == ["finished"] * 2
    for r in study.runs:
        assert len(r.train_loss) == 4
        assert r.evals["step"] == [2, 4]
        assert len(r.evals["val_loss"]) == 2
        assert r.config.lr == 6e-3  # the task's AdamW peak
        assert r.task["describe"]["corpus"]["train_sha256"] == (
            TinyLM(**args).describe()["corpus"]["train_sha256"])
    assert study.runs[0].train_loss != study.runs[1].train_loss
