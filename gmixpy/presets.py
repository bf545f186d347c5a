"""The presets: gmix's ensemble (src/predictor.cpp) written as a Specification, and the stronger ensemble built
on it.

`default`   gmix's ensemble with paq8-style context maps (bit histories, run and byte-history inputs) over its
            orders, words, sparse and indirect contexts, word, record and text contexts, more mixer selectors and
            an APM stage after the mixers (`stronger` with DEFAULT_FEATURES); PPMd and the LSTM as in gmix.
`fast`      gmix-fast (no PPMd, no LSTM) with the stronger ensemble's components that add few mixer inputs
            (FAST_FEATURES): at least as fast as `gmix-fast`.
`gmix`      the whole of gmix: PPMd (order 20, 2000 MB) and the LSTM (50 cells, horizon 100); the exact port, the
            reference every other preset is measured against.  Its mixers add in gmix's order, so it reproduces
            gmix's probabilities bit for bit (tests/test_gmix_reference.py).
`gmix-fast` gmix without PPMd and the LSTM, with gmix's table sizes (about 1.1 GB, as gmix), also bit-exact.
`tiny`      `default` with tables of a few KB, a 1 MB PPMd and a 4-cell LSTM, for tests: it compiles once and
            runs in seconds in well under 200 MB.
`gmix-tiny` `gmix` made tiny the same way.

Table sizes are written as bit counts: an Indirect with table_bits=16 is gmix's `1 << 16`.  `shrink` takes bits
off every table (never below 4 bits), which is how the tiny presets are made from the same declarations.
Archives name their preset and its specification digest; when a preset's ensemble changes, LEGACY keeps what
the name meant before, so that older archives still decode.
"""
from __future__ import annotations

from dataclasses import replace

from .archive import FORMAT_VERSION, MAX_SIZE_CLASS
from .spec import (
    Active,
    Apm,
    ContextMap,
    Indirect,
    IndirectHash,
    Interval,
    Lstm,
    Match,
    MatchState,
    Misses,
    Mixer,
    Ppmd,
    Record,
    Skip,
    Specification,
    Text,
    Word,
)

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
         ppmd_memory_mb: float = 2000, lstm: Lstm | None = None, sequential: bool = False) -> Specification:
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

    spec = Specification(name, tuple(contexts), tuple(models), tuple(mixers), history_reserve, sequential)
    spec.validate()
    return spec


FEATURES = ("words", "words2", "apm", "apm_hi", "signals", "signal_apms", "high_orders", "adaptive", "records",
            "warm", "text", "cm_orders", "cm_replace", "cm_words", "cm_mixer", "cm_order0", "cm_high", "cm_sparse",
            "cm_sparse_replace", "cm_apm", "cm_recent", "cm_indirect", "cm_plain")
# The components added to gmix's ensemble, by name, so that benchmarks/ablate.py can switch each one off:
#   words, words2   word contexts (contexts/word.py), each with an Indirect model (or in a context map: cm_words)
#   apm, apm_hi     the APM final stage on orders 0-3, and on order 4 and the word
#   signals         mixers selected by how many orders have been seen and by the match state (contexts/signals.py)
#   signal_apms     APMs on those signals and on the recent prediction misses
#   high_orders     Indirect models on orders 8, 12, 16 and 24
#   adaptive        Indirect models adapt faster while a context is young (count-based rate, limit 255)
#   records         record contexts with a detected period (contexts/record.py) and a mixer on the column
#   warm            new mixer weight sets start from the layer's context-free mixer
#   text            byte-class and column contexts (contexts/text.py) and a mixer on the byte classes
#   cm_orders       a context map (paq8px's ContextMap2, models/context_map.py) over orders 1-6 and the words
#   cm_replace      with cm_orders: gmix's seven order-n Indirect models are left out (the map covers them)
#   cm_words        the word contexts go to a context map instead of Indirect models
#   cm_mixer        a layer-0 mixer selected by each context map's confidence (paq8px's order << 3 | bpos)
#   cm_order0       with cm_orders: order 0 in the map too
#   cm_high         with cm_orders: orders 8, 11 and 14 in the map too (paq8px's NormalModel)
#   cm_sparse       a context map over gmix's sparse (skip) contexts
#   cm_sparse_replace  with cm_sparse: gmix's fifteen skip Indirect models are left out
#   cm_apm          an APM on the order map's confidence
#   cm_recent       a context map over the single recent bytes 2..10 back and the LSTM's predicted byte, instead
#                   of gmix's Indirect models on them
#   cm_indirect     a context map over gmix's indirect-hash contexts, instead of its double-Indirect models
#   cm_plain        the sparse, recent and indirect maps give no run and byte-history inputs (4 per context, not 7)
# Parts of gmix's own ensemble that a preset may leave out or change (benchmarks/ablate.py: variant +PART).
# What the `default` and `fast` presets use, chosen by benchmarks/ablate.py (the README's ablation table).
DEFAULT_FEATURES_V4 = tuple(f for f in FEATURES if f not in ("apm_hi", "high_orders"))  # `default` in archives
#                                                                                     of versions 3 and 4
# Since archive version 5, with what benchmarks/ablate.py measured to pay on all of tinyshakespeare.txt and
# alice29.txt (README, "What each component gives"): APMs on order 4, the word and the text classes, slower mixers,
# faster record and text models, three more word contexts, a mixer on 12 bytes' classes, and a 100-cell LSTM that
# learns faster.
DEFAULT_FEATURES = DEFAULT_FEATURES_V4 + ("apm_hi", "apm_text", "mixer_lr_lo", "ind_lr_hi", "words3", "mix_classes12",
                                          "lstm_lr_hi", "lstm100")
# `fast` must run at least as fast as gmix-fast: the context maps' many mixer inputs cost more time than they
# gain there, so it keeps gmix's Indirect models and adds the components that add few inputs (words, records,
# text, APMs, adaptive rates, warm starts), without gmix's nine interval mixers and recent-byte models.
FAST_FEATURES = ("words", "apm", "signal_apms", "adaptive", "records", "warm", "text", "drop_intervals",
                 "drop_recent_bytes")
DROPS = ("lstm100", "lstm2x", "drop_skips", "drop_intervals", "drop_double_indirect", "drop_recent_bytes",
         "drop_matches")
# Settings of the ensemble's parts that a variant may change (benchmarks/ablate.py: variant +NAME):
#   lstm200, lstm100x2  a 200-cell LSTM; two layers of 100 cells
#   lstm_lr_hi      the LSTM's learning rate 0.042 (gmix: 0.03)
#   mixer_lr_lo     every mixer's learning rate x0.7
#   ind_lr_hi       the record and text contexts' Indirect models learn at 0.03 (gmix's rate: 0.02)
#   words3          three more word contexts (word 2; words 0-3; word 1 with the last byte)
#   mix_classes12   a layer-0 mixer selected by the classes of the last 12 bytes
#   apm_text        an APM on the classes of the last 6 bytes
TUNES = ("lstm200", "lstm100x2", "lstm_lr_hi", "mixer_lr_lo", "ind_lr_hi", "words3", "mix_classes12", "apm_text")
_ORDER_INDIRECTS = {"Indirect(1 byte)", "Indirect(2 bytes)", "Indirect(3_15 byte hash)", "Indirect(3_16 byte hash)",
                    "Indirect(4_15 byte hash)", "Indirect(5_15 byte hash)", "Indirect(6_15 byte hash)"}
_ORDER_SLOTS = ("last_byte", "last_two_bytes_hash", "last_three_bytes_hash", "last_four_bytes_hash",
                "last_five_bytes_hash", "last_six_bytes_hash")


def stronger(name: str, neural: bool, shrink: int = 0, features=FEATURES, cm_options: dict | None = None,
             **gmix_options) -> Specification:
    """gmix's ensemble plus the components named in `features` (FEATURES), less the parts of it named there
    (DROPS).  `cm_options` are ContextMap fields (table_bits before shrinking, gain, limit, deferred, run,
    byte_history) for every context map."""
    cells, layers = (200, 1) if "lstm200" in features else (100, 2) if "lstm100x2" in features else \
        (100, 1) if "lstm100" in features else (50, 2) if "lstm2x" in features else (50, 1)
    lstm_rate = 0.042 if "lstm_lr_hi" in features else Lstm.learning_rate
    if gmix_options.get("lstm"):  # declared by the caller (the tiny presets): only the rate follows the features
        gmix_options["lstm"] = replace(gmix_options["lstm"], learning_rate=lstm_rate)
    elif (cells, layers, lstm_rate) != (50, 1, Lstm.learning_rate):
        gmix_options["lstm"] = Lstm(cells=cells, layers=layers, learning_rate=lstm_rate)
    base = gmix(name, neural, shrink, **gmix_options)

    def bits(b: int) -> int:
        return b if b <= 4 else max(4, b - shrink)

    cm = {"table_bits": 22, "gain": 2.0, **(cm_options or {})}
    table_bits = cm["table_bits"]  # of the order map; the others are smaller (fewer or smaller contexts)
    cm["table_bits"] = bits(table_bits)
    contexts, models, apms = list(base.contexts), list(base.models), []
    mixers = {layer: [m for m in base.mixers if m.layer == layer] for layer in (0, 1, 2)}

    def drop(test):
        return [m for m in models if not (isinstance(m, Indirect) and test(m))]

    if "drop_skips" in features or ("cm_sparse" in features and "cm_sparse_replace" in features):
        models = drop(lambda m: m.context.startswith("skip_"))
    if "drop_intervals" in features:
        mixers[0] = [m for m in mixers[0] if not m.context.startswith("interval_")]
    if "drop_double_indirect" in features or "cm_indirect" in features:
        models = drop(lambda m: m.context.startswith("indirect_"))
    recent = tuple(f"recent_byte_{i}" for i in range(1, 10)) + ("lstm_prediction_context",)
    if "drop_recent_bytes" in features:
        models = drop(lambda m: m.context.startswith("recent_byte_"))
    if "cm_recent" in features:
        models = drop(lambda m: m.context in recent)
    if "drop_matches" in features:
        models = [m for m in models if not isinstance(m, Match) or m.context in ("last_byte", "last_six_bytes_hash",
                                                                                 "last_four_bytes_hash")]
    cm_orders = "cm_orders" in features
    if cm_orders and "cm_replace" in features:
        models = [m for m in models if m.name not in _ORDER_INDIRECTS]

    word_contexts = []
    if "words" in features:
        word_contexts += [Word("word_0", 0, 1), Word("word_0_1", 0, 2), Word("word_0_b1", 0, 1, 1)]
    if "words2" in features:
        word_contexts += [Word("word_1", 1, 1), Word("word_1_2", 1, 2), Word("word_0_1_2", 0, 3),
                          Word("word_0_b2", 0, 1, 2)]
    if "words3" in features:
        word_contexts += [Word("word_2", 2, 1), Word("word_0_1_2_3", 0, 4), Word("word_1_b1", 1, 1, 1)]
    contexts += word_contexts
    if "cm_words" not in features:
        for ctx in word_contexts:
            models.append(Indirect(ctx.name, bits(16), 0.02, f"Indirect({ctx.name})"))

    maps = []
    if cm_orders:
        words = [c.name for c in word_contexts] if "cm_words" in features else []
        orders = list(_ORDER_SLOTS)
        if "cm_order0" in features:
            orders.insert(0, "always_zero")
        if "cm_high" in features:
            for n in (8, 11, 14):
                contexts.append(Word(f"high_order_{n}", 0, 0, n))
                orders.append(f"high_order_{n}")
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
        maps.append(ContextMap("cm_indirect", tuple(f"indirect_{o}_{t}_{i}" for o, t, i in _INDIRECT_HASHES),
                               **{**plain, "table_bits": bits(table_bits - 2)}))
    models += maps
    if "cm_mixer" in features:
        for m in maps:
            mixers[0].append(Mixer(m.order_slot(), 0.005, 0, m.order_bits(),
                                   f"Mixer0({m.order_slot()})"))
    if "cm_apm" in features and cm_orders:
        apms.append(Apm(maps[0].order_slot(), bits(16), True, 0.02, "APM(cm_orders.order)", 127))
    if "apm_hi" in features:
        apms += [Apm("last_four_bytes_hash", bits(16), True, 0.02, "APM(order 4)", 127),
                 Apm("word_0", bits(16), True, 0.02, "APM(word)", 127) if "words" in features else
                 Apm("last_five_bytes_hash", bits(16), True, 0.02, "APM(order 5)", 127)]
    if "high_orders" in features:
        for order in (8, 12, 16, 24):
            contexts.append(Skip(f"order_{order}", tuple(range(order))))
            models.append(Indirect(f"order_{order}", bits(16), 0.02, f"Indirect(order {order})"))
    shape_rate = 0.03 if "ind_lr_hi" in features else 0.02
    if "records" in features:
        for kind in ("above", "above_left", "column", "distance"):
            contexts.append(Record(f"record_{kind}", kind))
            models.append(Indirect(f"record_{kind}", bits(16), shape_rate, f"Indirect(record {kind})"))
        mixers[0].append(Mixer("record_column", 0.003, 0, 12, "Mixer0(record column)"))
    if "text" in features:
        for ctx in (Text("classes_6", "classes", 6), Text("classes_12", "classes", 12),
                    Text("column_above", "column_above"), Text("above_last", "above_last")):
            contexts.append(ctx)
            models.append(Indirect(ctx.name, bits(16), shape_rate, f"Indirect({ctx.name})"))
        mixers[0].append(Mixer("classes_6", 0.003, 0, 12, "Mixer0(classes)"))
        if "mix_classes12" in features:
            mixers[0].append(Mixer("classes_12", 0.003, 0, 12, "Mixer0(classes 12)"))
        if "apm_text" in features:
            apms.append(Apm("classes_6", bits(16), True, 0.02, "APM(classes)", 127))
    if "signals" in features or "signal_apms" in features:
        # How many orders have been seen: the order map says it itself; else count the order models' inputs.
        orders_in = ["Indirect(1 byte)", "Indirect(2 bytes)", "Indirect(3_16 byte hash)", "Indirect(4_15 byte hash)",
                     "Indirect(5_15 byte hash)", "Indirect(6_15 byte hash)"]
        if cm_orders and "cm_replace" in features:
            seen, seen_bits = maps[0].order_slot(), maps[0].order_bits()
        else:
            seen, seen_bits = "order_seen", 6
            contexts.append(Active("order_seen", tuple(f"{m}-indirect" for m in orders_in)))
        contexts += [MatchState("match_state"), Misses("misses")]
    if "signals" in features:
        if seen == "order_seen":
            mixers[0].append(Mixer("order_seen", 0.004, 0, 6, "Mixer0(order seen)"))
        mixers[0].append(Mixer("match_state", 0.003, 0, 10, "Mixer0(match state)"))
        mixers[1].append(Mixer(seen, 0.003, 1, seen_bits, "Mixer1(order seen)"))
    if "signal_apms" in features:
        apms += [Apm("match_state", bits(16), True, 0.02, "APM(match state)", 127),
                 Apm("misses", 16, True, 0.02, "APM(misses)", 127)]
        if not (seen != "order_seen" and "cm_apm" in features):
            apms.append(Apm(seen, 14, True, 0.02, "APM(order seen)", 127))
    if "apm" in features:
        apms += [Apm("bit_context", 8, False, 0.02, "APM(order 0)", 127),
                 Apm("last_byte_plus_recent", bits(16), False, 0.02, "APM(order 1)", 127),
                 Apm("last_two_bytes_hash", bits(16), True, 0.02, "APM(order 2)", 127),
                 Apm("last_three_bytes_hash", bits(16), True, 0.02, "APM(order 3)", 127)]
    if "adaptive" in features:
        models = [replace(m, limit=255) if isinstance(m, Indirect) else m for m in models]
    if "mixer_lr_lo" in features:
        mixers = {layer: [replace(m, learning_rate=m.learning_rate * 0.7) for m in ms] for layer, ms in mixers.items()}
    spec = replace(base, contexts=tuple(contexts), models=tuple(models),
                   mixers=tuple(mixers[0] + mixers[1] + mixers[2]), apms=tuple(apms),
                   warm_start="warm" in features)
    spec.validate()
    return spec


_TINY = dict(shrink=10, history_reserve=1 << 12, ppmd_memory_mb=1, lstm=Lstm(cells=4, layers=1, horizon=6))

PRESETS = {
    "default": lambda: stronger("default", neural=True, features=DEFAULT_FEATURES),
    "fast": lambda: stronger("fast", neural=False, features=FAST_FEATURES),
    "tiny": lambda: stronger("tiny", neural=True, features=DEFAULT_FEATURES, **_TINY),
    "gmix": lambda: gmix("gmix", neural=True, sequential=True),
    "gmix-fast": lambda: gmix("gmix-fast", neural=False, sequential=True),
    "gmix-tiny": lambda: gmix("gmix-tiny", neural=True, **_TINY),
}


# What a preset name meant in archives written before it changed: decoding one looks here when the current preset
# of that name has another specification digest.
# Each name lists what it meant, oldest first.
LEGACY = {
    # archive versions 1 and 2: gmix's ensemble, mixing in 16 lanes; versions 3 and 4: the first stronger ensemble
    "default": (lambda: gmix("default", neural=True),
                lambda: stronger("default", neural=True, features=DEFAULT_FEATURES_V4)),
    "fast": (lambda: gmix("fast", neural=False),),
    "tiny": (lambda: gmix("tiny", neural=True, **_TINY),
             lambda: stronger("tiny", neural=True, features=DEFAULT_FEATURES_V4, **_TINY)),
}


# Presets whose hashed tables follow the input (see `sized`).  The gmix ports keep gmix's sizes whatever the input:
# they reproduce gmix's own archives.
SIZED = ("default", "fast", "tiny")
MIN_SIZE_CLASS = 12  # inputs up to 4 KiB get the tables of a 4 KiB input


def size_class(length: int) -> int:
    """The size class of an input of `length` bytes: the smallest k with length <= 2**k, at least MIN_SIZE_CLASS."""
    return max(MIN_SIZE_CLASS, (max(length, 1) - 1).bit_length())


# Bits an Indirect table keeps beyond the size class, by the archive format version from which the rule holds.
# Version 6 cut them from 2n rows to n/4: an Indirect model's contexts are few (its context is a short byte
# history), so its rows stay sparse.  Measured with `default` (archive bytes, k+1 -> k-2 bits): alice29.txt 32,184
# -> 32,185 (peak 581 -> 521 MB), asyoulik.txt 30,434 -> 30,434, cp.html 5,154 -> 5,155, fields.c 2,133 -> 2,134,
# grammar.lsp 893 -> 893, sum 7,626 -> 7,627, xargs.1 1,239 -> 1,239.
INDIRECT_EXTRA = {4: 1, 6: -2}


def _indirect_extra(version: int) -> int:
    return INDIRECT_EXTRA[max(v for v in INDIRECT_EXTRA if v <= version)]


# From archive format 7, the LSTM's cells in the small size classes: size class -> at most this many cells, up to
# that class (above the last, the preset's).  A small input cannot train a large LSTM: a smaller one predicts as
# well there, at a fraction of the time (the LSTM is most of `default`'s time per byte).  Measured with `default`
# (the dictionary transform where compress uses it; cross-entropy bytes, summed over the first N bytes of
# alice29.txt, asyoulik.txt, cp.html, fields.c, grammar.lsp, xargs.1, sum, kennedy.xls, tinyshakespeare.txt and
# lcet10.txt; CPU seconds in all), 100 cells -> 50 -> 20 -> 10:
#     4 KB (size class 12): 10,890 -> 10,888 -> 10,884 -> 10,883; 4.6 -> 3.6 -> 2.7 -> 2.4 s
#     8 KB (13):            18,310 -> 18,305 -> 18,304 -> 18,304; 9.0 -> 7.5 -> 5.7 -> 5.7 s
#     16 KB (14):           30,513 -> 30,507 -> 30,514 -> 30,522; 14.9 -> 12.2 -> 9.7 -> 9.3 s
#     64 KB (16):           67,545 -> 67,551 -> 67,714 -> 67,776; 39.5 -> 31.8 -> 26.0 -> 25.4 s (9 files)
# and at 32 KB (15; two files) 50 cells -0.04%, 20 cells +0.1%.  Above 64 KB the 100 cells pay (alice29.txt,
# coded in size class 17: +73 bytes with 50).
LSTM_CELLS = {13: 10, 14: 20, 16: 50}
LSTM_CELLS_FROM = 7


def _lstm_cells(k: int, version: int) -> int | None:
    if version < LSTM_CELLS_FROM:
        return None
    return next((cells for bound, cells in sorted(LSTM_CELLS.items()) if k <= bound), None)


def sized(spec: Specification, k: int, version: int = FORMAT_VERSION) -> Specification:
    """`spec` with every hashed table cut to what an input of at most 2**k bytes can fill, never enlarged.

    An input of n bytes has at most n distinct contexts per context slot: a match table and an indirect-hash table
    get 2n rows (k + 1 bits), so their load stays at most one half; an Indirect table (rows of 256 bit contexts)
    gets what INDIRECT_EXTRA gives for the archive format `version` (n/4 rows from version 6: its contexts are
    short byte histories, far fewer than n; 2n before); an APM row is a context with the bits of the current byte,
    8n rows at most (k + 3).  A context map gets n/16 buckets of seven slots per context (k - 4 + log2 of its
    contexts): its low orders repeat and its high orders replace their least useful slots, so in practice the cut
    costs next to nothing.  Measured with `default` (coded bytes with the maps at the bound's 2n buckets per
    context -> at n/16; peak resident memory):
    alice29.txt 34,817 -> 34,818 (868 -> 486 MB), lcet10.txt 82,989 -> 82,989 (887 -> 567 MB), sum 7,571 -> 7,571,
    cp.html 5,821 -> 5,820, fields.c 2,185 -> 2,184.  Mixer weight sets are allocated when first seen and PPMd's
    arena is used from its ends, so neither needs sizing.  From format 7 the LSTM of a small size class also has
    fewer cells (LSTM_CELLS): not memory but time.  The result is a pure function of (spec, k, version):
    decompression rebuilds it from the archive's size class and version."""
    def fit(bits: int, extra: int) -> int:
        return min(bits, k + extra)

    indirect = _indirect_extra(version)
    cells = _lstm_cells(k, version)

    def resize(item):
        if isinstance(item, Lstm) and cells is not None:
            return replace(item, cells=min(item.cells, cells))
        if isinstance(item, Indirect):
            return replace(item, table_bits=fit(item.table_bits, indirect))
        if isinstance(item, (Match, IndirectHash)):
            return replace(item, table_bits=fit(item.table_bits, 1))
        if isinstance(item, ContextMap):
            return replace(item, table_bits=fit(item.table_bits, (len(item.contexts) - 1).bit_length() - 4))
        if isinstance(item, Apm):
            return replace(item, table_bits=fit(item.table_bits, 3))
        return item

    return replace(spec, contexts=tuple(map(resize, spec.contexts)), models=tuple(map(resize, spec.models)),
                   apms=tuple(map(resize, spec.apms)))


def for_length(name: str, length: int | None) -> tuple[Specification, int]:
    """Preset `name` sized for an input of `length` bytes (None: unknown) and the size class an archive records:
    0 when nothing is cut (a large or unknown input, or a preset outside SIZED)."""
    spec = get(name)
    if length is None or name not in SIZED:
        return spec, 0
    k = size_class(length)
    small = sized(spec, k)
    return (small, k) if small != spec else (spec, 0)


def for_archive(name: str, digest: bytes) -> Specification | None:
    """The specification an archive names by preset and specification digest: the current preset of that name,
    or what the name meant before it changed (LEGACY); None when neither has that digest."""
    current = (PRESETS[name],) if name in PRESETS else ()
    for build in current + LEGACY.get(name, ()):
        spec = build()
        if spec.digest() == digest:
            return spec
    return None


def for_size_class(spec: Specification, name: str, k: int, version: int = FORMAT_VERSION) -> Specification | None:
    """What an archive of format `version` and size class `k` was coded with, given the declared `spec` of its
    preset `name`; None when that preset is never sized (a damaged or crafted header)."""
    if k == 0:
        return spec
    if name not in SIZED or spec.name != name or not MIN_SIZE_CLASS <= k <= MAX_SIZE_CLASS:
        return None
    return sized(spec, k, version)


def get(name: str) -> Specification:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(sorted(PRESETS))})") from None
