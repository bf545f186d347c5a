"""The presets: gmix's ensemble (src/predictor.cpp) written as a Specification.

`gmix`      the whole of gmix: PPMd (order 20, 2000 MB) and the LSTM (50 cells, horizon 100) as well; the exact
            port, the reference every other preset is measured against.
`gmix-fast` gmix without PPMd and the LSTM, with gmix's table sizes (about 1.1 GB, as gmix).
`default`, `fast`: for now the same ensembles as `gmix` and `gmix-fast` under their own names.
`tiny`    the same models with tables of a few KB, a 1 MB PPMd and a 4-cell LSTM, for tests: it compiles once
          and runs in seconds in well under 200 MB.

Table sizes are written as bit counts: an Indirect with table_bits=16 is gmix's `1 << 16`.  `shrink` takes bits
off every table (never below 4 bits), which is how `tiny` is made from the same declaration.
"""
from __future__ import annotations

from dataclasses import replace

from .spec import Apm, ContextMap, Indirect, IndirectHash, Interval, Lstm, Match, Mixer, Ppmd, Skip, Specification, Word

_ORDER_HASHES = {  # gmix's last_N_bytes_hash contexts are skip contexts over consecutive bytes
    "last_two_bytes_hash": (0, 1),
    "last_three_bytes_hash": (0, 1, 2),
    "last_four_bytes_hash": (0, 1, 2, 3),
    "last_five_bytes_hash": (0, 1, 2, 3, 4),
    "last_six_bytes_hash": (0, 1, 2, 3, 4, 5),
}
_SKIPS = [  # AddSkip, in gmix's order
    (1, 2), (1, 2, 3), (0, 2), (0, 2, 3), (1, 2, 3, 4), (0, 3), (0, 4), (0, 5), (0, 2, 3, 4), (0, 3, 4),
    (0, 6), (0, 7), (0, 1, 3, 4), (0, 4, 5), (0, 1, 2, 4),
]
_INTERVALS = [(16, 4), (16, 8), (16, 12), (32, 3), (32, 6), (32, 12), (64, 4), (64, 8), (64, 12)]
_INDIRECT_HASHES = [(1, 8, 1), (1, 8, 2), (1, 8, 3), (2, 16, 1), (2, 16, 2), (2, 16, 3), (3, 24, 1), (4, 24, 2),
                    (4, 24, 3)]
_INNER_TABLE_BITS = {1: 8, 2: 16, 3: 15}  # the Indirect model over an indirect-hash context, by inner order


def _skip_name(offsets):
    return "skip_" + "_".join(map(str, offsets))


def gmix(name: str, neural: bool, shrink: int = 0, history_reserve: int = 1 << 20,
         ppmd_memory_mb: float = 2000, lstm: Lstm | None = None) -> Specification:
    def bits(b: int) -> int:
        return b if b <= 4 else max(4, b - shrink)

    contexts = [Skip(n, o) for n, o in _ORDER_HASHES.items()]
    contexts += [Skip(_skip_name(o), o) for o in _SKIPS]
    contexts += [Interval(f"interval_{d}_{b}", d, b) for d, b in _INTERVALS]
    contexts += [IndirectHash(f"indirect_{o}_{t}_{i}", o, bits(t), i) for o, t, i in _INDIRECT_HASHES]

    models: list = []
    if neural:
        models.append(Ppmd(order=20, memory_mb=ppmd_memory_mb))
        models.append(lstm or Lstm())

    # AddIndirect
    lr = 0.02
    models.append(Indirect("last_byte", bits(8), lr, "Indirect(1 byte)"))
    models.append(Indirect("last_two_bytes_hash", bits(16), lr, "Indirect(2 bytes)"))
    models.append(Indirect("last_three_bytes_hash", bits(15), lr, "Indirect(3_15 byte hash)"))
    models.append(Indirect("last_three_bytes_hash", bits(16), lr, "Indirect(3_16 byte hash)"))
    models.append(Indirect("last_four_bytes_hash", bits(15), lr, "Indirect(4_15 byte hash)"))
    models.append(Indirect("last_five_bytes_hash", bits(15), lr, "Indirect(5_15 byte hash)"))
    models.append(Indirect("last_six_bytes_hash", bits(15), lr, "Indirect(6_15 byte hash)"))
    for i in range(1, 10):
        models.append(Indirect(f"recent_byte_{i}", bits(8), lr, f"Indirect(recent byte({i}))"))
    models.append(Indirect("lstm_prediction_context", bits(8), lr, "Indirect(lstm_prediction_context)"))
    # AddSkip
    for o in _SKIPS:
        models.append(Indirect(_skip_name(o), bits(16), lr, f"Indirect({_skip_name(o)})"))
    # AddMatch
    for ctx, tb, label in [("last_byte", 8, "Match(1 byte)"), ("last_two_bytes_hash", 16, "Match(2 bytes)"),
                           ("last_three_bytes_hash", 24, "Match(3 bytes)"),
                           ("last_four_bytes_hash", 21, "Match(4 byte hash)"),
                           ("last_five_bytes_hash", 21, "Match(5 byte hash)"),
                           ("last_six_bytes_hash", 21, "Match(6 byte hash)")]:
        models.append(Match(ctx, bits(tb), 400, label))
    # AddDoubleIndirect
    for o, t, i in _INDIRECT_HASHES:
        ctx = f"indirect_{o}_{t}_{i}"
        tb = _INNER_TABLE_BITS[i]
        models.append(Indirect(ctx, bits(tb), 1.0 / 200, f"Indirect({ctx}_{tb})"))

    # AddMixers: (context, learning rate, table bits, label)
    layer0 = [
        ("last_byte", 0.005, 8, "last byte"), ("recent_byte_3", 0.0055, 8, "4th last byte"),
        ("second_last_plus_recent", 0.003, 16, "2nd last + recent"),
        ("last_four_bytes_hash", 0.0045, 15, "4 byte hash"), ("indirect_3_24_1", 0.006, 8, "indirect_3_24_1_8"),
        ("recent_byte_1", 0.004, 8, "2nd last byte"), ("longest_match", 0.0005, 3, "longest match"),
        ("last_two_bytes_hash", 0.0035, 16, "2 bytes"), ("recent_byte_2", 0.0065, 8, "3rd last byte"),
        ("last_three_bytes_hash", 0.0025, 15, "3 byte hash"), ("last_byte", 0.001, 8, "last byte"),
        ("last_byte_plus_recent", 0.002, 16, "last byte + recent"),
        ("interval_16_4", 0.005, 4, "interval_16_4"), ("interval_16_8", 0.0045, 8, "interval_16_8"),
        ("interval_16_12", 0.0055, 12, "interval_16_12"), ("interval_32_3", 0.004, 3, "interval_32_3"),
        ("interval_32_6", 0.0035, 6, "interval_32_6"), ("skip_0_2", 0.006, 16, "skip_0_2"),
        ("interval_32_12", 0.003, 12, "interval_32_12"), ("interval_64_4", 0.0065, 4, "interval_64_4"),
        ("interval_64_8", 0.003, 8, "interval_64_8"), ("interval_64_12", 0.0025, 12, "interval_64_12"),
        ("lstm_prediction_context", 0.002, 8, "lstm_prediction"), ("always_zero", 0.0005, 0, "no context"),
    ]
    layer1 = [
        ("recent_byte_1", 0.0045, 8, "2nd last byte"), ("always_zero", 0.0035, 0, "no context"),
        ("bit_context", 0.003, 8, "recent_bits"), ("recent_byte_2", 0.002, 8, "3rd last byte"),
        ("last_byte", 0.0025, 8, "last byte"), ("bit_context", 0.00001, 8, "recent_bits"),
        ("longest_match", 0.0008, 3, "longest match"), ("always_zero", 0.0004, 0, "no context"),
    ]
    mixers = [Mixer(c, lr, 0, bits(b), f"Mixer0({label})") for c, lr, b, label in layer0]
    mixers += [Mixer(c, lr, 1, bits(b), f"Mixer1({label})") for c, lr, b, label in layer1]
    mixers.append(Mixer("always_zero", 0.0005, 2, 0, "Mixer(final layer)"))

    spec = Specification(name, tuple(contexts), tuple(models), tuple(mixers), history_reserve)
    spec.validate()
    return spec


# The components added to gmix's ensemble, by name, so that benchmarks/ablate.py can switch each one off.
#   words, words2   word contexts (contexts/word.py), each with an Indirect model (or in a context map: cm_words)
#   apm, apm_hi     the APM final stage on low and high orders
#   cm_orders       a context map (models/context_map.py) over orders 1-6 and the word contexts
#   cm_replace      with cm_orders: gmix's seven order-n Indirect models are left out (the map covers them)
#   cm_words        the word contexts go to a context map instead of Indirect models
#   cm_mixer        a layer-0 mixer selected by the context maps' confidence (paq8px's order << 3 | bpos)
#   cm_order0       with cm_orders: order 0 in the map too
#   cm_high         with cm_orders: orders 8, 11 and 14 in the map too (paq8px's NormalModel)
#   cm_sparse       a second context map over gmix's sparse (skip) contexts, without run and byte-history inputs
#   cm_sparse_replace  with cm_sparse: gmix's fifteen skip Indirect models are left out
#   cm_apm          an APM on the order map's confidence
#   cm_recent       a context map over the single recent bytes 2..10 back and the LSTM's predicted byte, instead
#                   of gmix's Indirect models on them (without run and byte-history inputs)
#   cm_indirect     a context map over gmix's indirect-hash contexts, instead of its double-Indirect models
#   cm_plain        the sparse, recent and indirect maps give no run and byte-history inputs (4 per context, not 7)
FEATURES = ("words", "words2", "apm", "apm_hi", "cm_orders", "cm_replace", "cm_words", "cm_mixer", "cm_order0",
            "cm_high", "cm_sparse", "cm_sparse_replace", "cm_apm", "cm_recent", "cm_indirect", "cm_plain")
_ORDER_INDIRECTS = {"Indirect(1 byte)", "Indirect(2 bytes)", "Indirect(3_15 byte hash)", "Indirect(3_16 byte hash)",
                    "Indirect(4_15 byte hash)", "Indirect(5_15 byte hash)", "Indirect(6_15 byte hash)"}
_ORDER_SLOTS = ("last_byte", "last_two_bytes_hash", "last_three_bytes_hash", "last_four_bytes_hash",
                "last_five_bytes_hash", "last_six_bytes_hash")


def stronger(name: str, neural: bool, shrink: int = 0, features=FEATURES, cm_options: dict | None = None,
             **gmix_options) -> Specification:
    """gmix's ensemble plus the components named in `features` (see FEATURES).  `cm_options` are ContextMap
    fields (table_bits before shrinking, gain, limit, deferred, run, byte_history) for every context map."""
    base = gmix(name, neural, shrink, **gmix_options)

    def bits(b: int) -> int:
        return b if b <= 4 else max(4, b - shrink)

    cm = {"table_bits": 22, "gain": 2.0, **(cm_options or {})}
    table_bits = cm["table_bits"]  # of the order map; the others are smaller (fewer or smaller contexts)
    cm["table_bits"] = bits(table_bits)
    contexts, models, mixers, apms = list(base.contexts), list(base.models), list(base.mixers), []
    if "cm_orders" in features and "cm_replace" in features:
        models = [m for m in models if m.name not in _ORDER_INDIRECTS]
    if "cm_sparse" in features and "cm_sparse_replace" in features:
        skips = {f"Indirect({_skip_name(o)})" for o in _SKIPS}
        models = [m for m in models if m.name not in skips]
    recent = tuple(f"recent_byte_{i}" for i in range(1, 10)) + ("lstm_prediction_context",)
    if "cm_recent" in features:
        models = [m for m in models if not (isinstance(m, Indirect) and m.context in recent)]
    indirect_hashes = tuple(f"indirect_{o}_{t}_{i}" for o, t, i in _INDIRECT_HASHES)
    if "cm_indirect" in features:
        models = [m for m in models if not (isinstance(m, Indirect) and m.context in indirect_hashes)]
    word_contexts = []
    if "words" in features:
        word_contexts += [Word("word_0", 0, 1), Word("word_0_1", 0, 2), Word("word_0_b1", 0, 1, 1)]
    if "words2" in features:
        word_contexts += [Word("word_1", 1, 1), Word("word_1_2", 1, 2), Word("word_0_1_2", 0, 3),
                          Word("word_0_b2", 0, 1, 2)]
    contexts += word_contexts
    if "cm_words" not in features:
        for ctx in word_contexts:
            models.append(Indirect(ctx.name, bits(16), 0.02, f"Indirect({ctx.name})"))
    maps = []
    if "cm_orders" in features:
        words = [c.name for c in word_contexts] if "cm_words" in features else []
        orders = list(_ORDER_SLOTS)
        if "cm_order0" in features:
            orders.insert(0, "always_zero")
        if "cm_high" in features:
            for n in (8, 11, 14):
                contexts.append(Word(f"order_{n}", 0, 0, n))
                orders.append(f"order_{n}")
        maps.append(ContextMap("cm_orders", tuple(orders) + tuple(words), **cm))
    elif "cm_words" in features and word_contexts:
        maps.append(ContextMap("cm_words", tuple(c.name for c in word_contexts), **cm))
    plain = {**cm, "run": False, "byte_history": False} if "cm_plain" in features else cm
    if "cm_sparse" in features:
        maps.append(ContextMap("cm_sparse", tuple(_skip_name(o) for o in _SKIPS),
                               **{**plain, "table_bits": bits(table_bits - 1)}))
    if "cm_recent" in features:
        maps.append(ContextMap("cm_recent", recent, **{**plain, "table_bits": bits(table_bits - 6)}))
    if "cm_indirect" in features:
        maps.append(ContextMap("cm_indirect", tuple(c.name for c in contexts if c.name in indirect_hashes),
                               **{**plain, "table_bits": bits(table_bits - 2)}))
    models += maps
    if "cm_mixer" in features:
        for m in maps:
            n = len(m.contexts) + 1
            layer0 = sum(1 for x in mixers if x.layer == 0)
            mixers.insert(layer0, Mixer(m.order_slot(), 0.005, 0, max(3, (8 * n - 1).bit_length()),
                                        f"Mixer0({m.order_slot()})"))
    if "cm_apm" in features and maps and maps[0].name == "cm_orders":
        apms.append(Apm(maps[0].order_slot(), bits(16), True, 0.02, "APM(cm_orders.order)"))
    if "apm_hi" in features:
        apms += [Apm("last_four_bytes_hash", bits(16), True, 0.02, "APM(order 4)"),
                 Apm("word_0", bits(16), True, 0.02, "APM(word)") if "words" in features else
                 Apm("last_five_bytes_hash", bits(16), True, 0.02, "APM(order 5)")]
    if "apm" in features:
        apms += [Apm("bit_context", 8, False, 0.02, "APM(order 0)"),
                 Apm("last_byte_plus_recent", bits(16), False, 0.02, "APM(order 1)"),
                 Apm("last_two_bytes_hash", bits(16), True, 0.02, "APM(order 2)"),
                 Apm("last_three_bytes_hash", bits(16), True, 0.02, "APM(order 3)")]
    spec = replace(base, contexts=tuple(contexts), models=tuple(models), mixers=tuple(mixers), apms=tuple(apms))
    spec.validate()
    return spec


PRESETS = {
    "gmix": lambda: gmix("gmix", neural=True),
    "gmix-fast": lambda: gmix("gmix-fast", neural=False),
    "fast": lambda: gmix("fast", neural=False),
    "default": lambda: gmix("default", neural=True),
    "tiny": lambda: gmix("tiny", neural=True, shrink=10, history_reserve=1 << 12, ppmd_memory_mb=1,
                         lstm=Lstm(cells=4, layers=1, horizon=6)),
}


def get(name: str) -> Specification:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(sorted(PRESETS))})") from None
