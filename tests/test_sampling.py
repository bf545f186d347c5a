"""Generation's sampling controls: the exact next-byte distribution behind --top-k / --top-p (every node of the bit
tree equals the sequential prediction, the per-bit state each family declares is complete), --stop and
--echo-prompt; same seed, same text, and long-term memory untouched, for every option."""
from __future__ import annotations

import numpy as np
import pytest

from gmixpy import engine
from gmixpy._jit import njit
from gmixpy.chunks import evaluate, trace
from gmixpy.generate import generate_bytes, next_byte_distribution, per_bit_views
from gmixpy.model import walk
from gmixpy.predictor import predict, update
from helpers import run, save_trained_tiny, trained_tiny, usage_error

PROMPT = b"Alice was beginning to get very tired of sitting by her sister on the "
OPTIONS = [dict(), dict(top_k=10), dict(top_p=0.9), dict(top_k=10, top_p=0.9), dict(top_k=1),
           dict(stop=b"e"), dict(top_k=5, stop=b"the"), dict(echo_prompt=True), dict(top_p=0.5, echo_prompt=True)]


@pytest.fixture(scope="module")
def trained(alice):
    return trained_tiny(alice[:30000])


def prompted(model, prompt=PROMPT):
    m = model.copy()
    evaluate(m, prompt, learn=False)
    return m


def test_every_tree_node_is_the_sequential_prediction(trained):
    base = prompted(trained)
    _, tree = next_byte_distribution(base.copy())
    for b in range(0, 256, 2):  # the even bytes' paths pass through every node
        probs = trace(base.copy(), bytes([b]), learn=False)
        node = 1
        for j in range(8):
            assert tree[node] == probs[j], (b, j)  # bit for bit
            node = 2 * node + ((b >> (7 - j)) & 1)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_distribution_marginals_are_the_bit_predictions(trained, temperature):
    dist, tree = next_byte_distribution(prompted(trained), temperature=temperature)
    assert dist.sum() == pytest.approx(1.0, abs=1e-12) and (dist > 0).all()
    p = tree.astype(np.float64)
    p[0] = 0.5  # unused
    logit = np.log(p / (1 - p)) / temperature
    tempered = 1 / (1 + np.exp(-logit))
    for node in range(1, 256):
        depth = node.bit_length() - 1
        prefix = node - (1 << depth)
        span = 1 << (8 - depth)
        block = dist[prefix * span:(prefix + 1) * span]
        assert block[span // 2:].sum() / block.sum() == pytest.approx(tempered[node], abs=2e-6)


@njit
def _bits(P, L, S, bits):
    for bit in bits:
        update(P, L, S, bit, False)
        predict(P, L, S)


def test_per_bit_declarations_are_complete(trained):
    """Every short-term array that a bit inside a byte changes is one its family declares as PER_BIT: stepping
    into a byte from its first prediction changes nothing else."""
    root = prompted(trained)
    engine.generate_first(root.params, root.ltm, root.stm)
    declared = {f"{family}.{name}" for family, state in zip(root.stm._fields, root.stm)
                for name in type(state).PER_BIT}
    before = dict(walk(root.stm))
    for bits in ([1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 1, 0, 0]):
        m = root.copy()
        _bits(m.params, m.ltm, m.stm, np.array(bits, np.int64))
        changed = {name for name, a in walk(m.stm) if not np.array_equal(a, before[name])}
        assert changed <= declared, changed - declared
        assert "mixer.inputs0" in changed
    assert sum(v.size for v in per_bit_views(root.stm)) < 64 * 1024  # nothing big (PPMd's arena) is copied


def test_truncated_generation_leaves_the_state_sequential_replay_would(trained):
    """Exploring the tree leaks nothing: after top-k / top-p generation the whole model equals one that read the
    prompt and the generated text bit by bit."""
    m = trained.copy()
    out = []
    generate_bytes(m, PROMPT, 60, 0.9, 11, False, out.append, top_k=10, top_p=0.9)
    replay = prompted(trained, PROMPT + b"".join(out))
    engine.generate_first(replay.params, replay.ltm, replay.stm)
    for (name, a), (_, b) in zip(walk(m.stm), walk(replay.stm)):
        assert np.array_equal(a, b), name
    for (name, a), (_, b) in zip(walk(m.ltm), walk(trained.ltm)):
        assert np.array_equal(a, b), name


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_same_seed_same_text_and_learning_frozen(trained, options):
    texts = []
    for _ in range(2):
        m = trained.copy()
        out = []
        n = generate_bytes(m, PROMPT, 80, 0.8, 5, False, out.append, **options)
        texts.append(b"".join(out))
        for (name, a), (_, b) in zip(walk(m.ltm), walk(trained.ltm)):
            assert np.array_equal(a, b), name  # long-term memory bit-identical
        assert n == len(texts[-1]) - (len(PROMPT) if options.get("echo_prompt") else 0)
    assert texts[0] == texts[1]
    if options.get("echo_prompt"):
        assert texts[0].startswith(PROMPT)
    if options.get("stop"):
        assert options["stop"] not in texts[0]


def test_top_k_one_is_greedy_and_seeds_differ_otherwise(trained):
    def gen(seed, **options):
        out = []
        generate_bytes(trained.copy(), PROMPT, 40, 1.0, seed, False, out.append, **options)
        return b"".join(out)

    assert gen(1, top_k=1) == gen(2, top_k=1)
    dist, _ = next_byte_distribution(trained.copy(), PROMPT)
    assert gen(1, top_k=1)[0] == int(np.argmax(dist))
    assert gen(1, top_k=20) != gen(2, top_k=20)
    # top-k keeps only the k most likely bytes: with k = 3, every byte is one of its step's three best
    m = prompted(trained)
    text = gen(3, top_k=3)
    for b in text[:10]:
        dist, _ = next_byte_distribution(m.copy())
        assert b in np.argsort(-dist, kind="stable")[:3]
        evaluate(m, bytes([b]), learn=False)


def test_stop_and_echo_cut_the_same_text(trained):
    def gen(**options):
        out = []
        generate_bytes(trained.copy(), PROMPT, 300, 0.8, 9, False, out.append, **options)
        return b"".join(out)

    full = gen()
    stop = full[100:103]
    assert gen(stop=stop) == full[:full.find(stop)]
    assert gen(echo_prompt=True) == PROMPT + full
    assert gen(stop=b"\x00\x01 never") == full


def test_cli_options(tmp_path, alice):
    model = save_trained_tiny(tmp_path / "m.gmxm", alice[:20000])
    args = ["generate", model, "--prompt", "Alice", "-n", 120, "--seed", 3, "-q"]
    a = run(*args, "--top-k", 8, "--top-p", 0.9, "--echo-prompt", "--stop", "\\n")
    assert a.returncode == 0, a.stderr
    assert a.stdout.startswith(b"Alice") and b"\n" not in a.stdout
    assert a.stdout == run(*args, "--top-k", 8, "--top-p", 0.9, "--echo-prompt", "--stop", "\\n").stdout
    usage_error(run(*args, "--top-p", 0), "top-p")
    usage_error(run(*args, "--top-p", 1.5), "top-p")
    usage_error(run(*args, "--top-k", -1), "top-k")
    usage_error(run(*args, "--stop", "\\x4"), "escape")

