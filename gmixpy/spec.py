"""The ensemble, declared once as data (gmix's predictor.cpp Add* calls).

A `Specification` lists the contexts, the models and the mixers in the order gmix runs them.  Everything else is
computed from it: table sizes, context slots, the mixer inputs and their names, the compiled kernels' arrays.  It
is plain data, so one compiled kernel serves every preset, and its canonical JSON is hashed into archives and
model files to tell specifications apart.

Context slots: every context a model or mixer can use is a named slot in ShortTermMemory.contexts.  The basic
slots (BASIC_SLOTS) always exist; skip, interval and indirect-hash contexts add theirs by name.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields
from typing import get_args

# Slots every specification has, written by contexts/basic.py (and by the LSTM and match models).
BASIC_SLOTS = (
    "always_zero",              # 0
    "bit_context",              # bits of the current byte seen so far with a leading 1, minus 1: 0..254
    "last_byte",                # the previous byte
    "last_byte_plus_recent",    # last_byte << 8 | bit_context
    "second_last_plus_recent",  # second last byte << 8 | bit_context
    "longest_match",            # longest current match over the match models, in units of 32 bits: 0..7
    "lstm_prediction_context",  # most likely next byte according to the LSTM (0 without one)
) + tuple(f"recent_byte_{i}" for i in range(1, 10))  # the byte i+1 bytes ago: recent_byte_1 = second last

ROTATING_HISTORY = 1000  # bytes of recent history kept in short-term memory (gmix: 1000)


@dataclass(frozen=True)
class Skip:
    """Context: MurmurHash3 of the recent bytes at the given distances (0 = last byte), e.g. (0, 2) = skip_0_2."""
    name: str
    offsets: tuple[int, ...]


@dataclass(frozen=True)
class Interval:
    """Context: the last bytes, each shrunk to byte // divisor, packed into `bits` bits (gmix's IntervalContext)."""
    name: str
    divisor: int
    bits: int


@dataclass(frozen=True)
class IndirectHash:
    """Context: the last `inner_order` bytes that followed the last `outer_order` bytes when they were last seen."""
    name: str
    outer_order: int
    table_bits: int
    inner_order: int


@dataclass(frozen=True)
class Word:
    """Context: a hash of words[first .. first + count - 1] (word 0 = the word being read; a word is a run of
    letters, case-folded, bytes >= 128 included) and of the last `bytes` bytes (contexts/word.py).  With no
    words it is an order-`bytes` context."""
    name: str
    first: int = 0
    count: int = 1
    bytes: int = 0


@dataclass(frozen=True)
class Record:
    """Context: from the detected record length (a period found in the data) and the recent bytes, by kind:
    'above', 'above_left', 'column' or 'distance' (contexts/record.py)."""
    name: str
    kind: str


@dataclass(frozen=True)
class Text:
    """Context: the shape of the text (contexts/text.py): kind 'classes' (the byte classes of the last `length`
    bytes), 'column_above' (the position in the line and the byte above it) or 'above_last'."""
    name: str
    kind: str
    length: int = 0


@dataclass(frozen=True)
class Active:
    """Context: how many of the named mixer inputs are active this bit, times 8, plus the bit position
    (contexts/signals.py): over the order-n models, how long a context has been seen before."""
    name: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class MatchState:
    """Context: the byte the longest current match expects, with its length in 4 steps above it (0 = none)."""
    name: str


@dataclass(frozen=True)
class Misses:
    """Context: the last 8 bits' prediction errors of the final probability."""
    name: str


def later(default):
    """A field added after the first specifications were recorded: left out of the canonical JSON while it has
    its default value, so that the digests of existing specifications (kept in archives) do not change."""
    return field(default=default, metadata={"later": True})


@dataclass(frozen=True)
class Indirect:
    """Model: context -> (nonstationary state, run-map state) -> two learned logits.  Adds 2 mixer inputs."""
    context: str
    table_bits: int           # the table holds 2**table_bits * 256 + 1 entries of two bytes
    learning_rate: float = 0.02
    name: str = ""
    limit: int = later(0)     # >0: a logit's rate is 1 / (its updates + 1.5) until that falls to learning_rate,
    #                           for at most `limit` updates (0: always learning_rate, as gmix)
    inputs = 2

    def input_names(self) -> list[str]:
        return [f"{self.name}-indirect", f"{self.name}-run_map"]


@dataclass(frozen=True)
class Match:
    """Model: context -> last position in the history; predicts the bit that followed.  Adds 1 mixer input."""
    context: str
    table_bits: int
    limit: int = 400          # learning rate of the per-length predictions decays to 1/limit
    name: str = ""
    inputs = 1

    def input_names(self) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class Ppmd:
    """Model: PPMd byte predictions turned into a bit prediction.  Adds 1 mixer input."""
    order: int = 20
    memory_mb: float = 2000
    name: str = "mod_ppmd"
    inputs = 1

    def input_names(self) -> list[str]:
        return [f"{self.name}({self.order})"]


@dataclass(frozen=True)
class Lstm:
    """Model: byte-level LSTM fed with PPMd's predictions.  Adds 1 input, skip-connected upwards."""
    cells: int = 50
    layers: int = 1
    horizon: int = 100
    learning_rate: float = 0.03
    gradient_clip: float = 10.0
    name: str = "LSTM"
    inputs = 1

    def input_names(self) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class Mixer:
    """A context-selected linear mixer.  layer 0 mixes the model inputs and the layer-0 mixers before it;
    layer 1 mixes layer 0, the skip-connected inputs and the layer-1 mixers before it; layer 2 (one mixer, the
    final one) mixes layers 0 and 1 and the skip-connected inputs."""
    context: str
    learning_rate: float
    layer: int
    table_bits: int           # weight sets for 2**table_bits contexts, allocated when first seen
    name: str = ""


@dataclass(frozen=True)
class ContextMap:
    """Model: paq8px's ContextMap2 over `contexts` (context slots), sharing one hash table of 2**table_bits
    buckets of 64 bytes (models/context_map.py).  Per context: the run input (`run`), four bit-history inputs
    and two byte-history inputs (`byte_history`).  It writes its confidence into the slot "<name>.order"."""
    name: str
    contexts: tuple[str, ...]
    table_bits: int
    run: bool = True
    byte_history: bool = True
    deferred: bool = True     # young contexts keep no slots 1 and 2 (paq8px's CM_DEFERRED)
    gain: float = 1.0         # factor on every input (1: paq8px's inputs at its scale 64, over 256)
    limit: int = 511          # count limit of the bit- and byte-history maps: their slowest rate is 1/(limit+2)

    @property
    def inputs(self) -> int:
        return len(self.contexts) * (4 + int(self.run) + 2 * int(self.byte_history))

    def order_slot(self) -> str:
        return f"{self.name}.order"

    def order_bits(self) -> int:
        """Bits that hold every value of the order slot, (contexts seen) * 8 + bpos (at least 3)."""
        return max(3, (8 * (len(self.contexts) + 1) - 1).bit_length())

    def input_names(self) -> list[str]:
        names = []
        for c in self.contexts:
            base = f"{self.name}[{c}]"
            if self.run:
                names.append(f"{base}-run")
            names += [f"{base}-stretch", f"{base}-probability", f"{base}-sure", f"{base}-counts"]
            if self.byte_history:
                names += [f"{base}-byte_history", f"{base}-byte_history_group"]
        return names


Context = Skip | Interval | IndirectHash | Word | Record | Text | Active | MatchState | Misses
SIGNALS = (Active, MatchState, Misses)
Model = Ppmd | Lstm | Indirect | Match | ContextMap


@dataclass(frozen=True)
class Apm:
    """Final stage: an adaptive probability map over the network's output in a context (models/apm.py).  The
    final probability is the mean of the network's and every APM's."""
    context: str
    table_bits: int           # contexts kept: 2**table_bits rows of 33 probabilities (hashed when larger)
    with_bits: bool = True    # the context is combined with the bits of the current byte seen so far
    rate: float = 0.02        # the learning rate a row settles at ...
    name: str = ""
    limit: int = 0            # ... after this many updates; before, 1 / (updates + 1.5) if larger


@dataclass(frozen=True)
class Specification:
    name: str
    contexts: tuple[Context, ...]
    models: tuple[Model, ...]
    mixers: tuple[Mixer, ...]
    history_reserve: int = 1 << 16  # initial byte capacity of the match history; it grows as needed
    sequential_mixing: bool = False  # True: the mixers add their terms one at a time in gmix's order, bit-exact
    #                                  with gmix's C++ but slower; False: in 16 lanes (what version-1 archives used)
    apms: tuple[Apm, ...] = ()      # the final stage after the mixers (none: the network's output is final)
    warm_start: bool = False        # a mixer's new weight set starts from its layer's context-free mixer's weights

    # ---- derived views -------------------------------------------------------------------------------------
    def slots(self) -> dict[str, int]:
        names = list(BASIC_SLOTS) + [c.name for c in self.contexts]
        names += [m.order_slot() for m in self.models if isinstance(m, ContextMap)]
        if len(set(names)) != len(names):
            raise ValueError(f"specification {self.name!r}: duplicate context names")
        return {n: i for i, n in enumerate(names)}

    def of_type(self, kind) -> list:
        return [m for m in self.models if isinstance(m, kind)]

    def input_names(self) -> list[str]:
        """Names of the mixer inputs (predictions) in index order, which is the order the models run."""
        return [n for m in self.models for n in m.input_names()]

    def skip_connected(self) -> list[int]:
        """Indices of the inputs that also feed layers 1 and 2 directly (gmix: the LSTM)."""
        out, i = [], 0
        for m in self.models:
            if isinstance(m, Lstm):
                out.append(i)
            i += m.inputs
        return out

    def validate(self) -> None:
        slots = self.slots()
        for item in list(self.models) + list(self.mixers) + list(self.apms):
            ctx = getattr(item, "context", None)
            if ctx is not None and ctx not in slots:
                raise ValueError(f"specification {self.name!r}: unknown context {ctx!r}")
        for c in self.contexts:
            if isinstance(c, Skip) and not (
                    1 <= len(c.offsets) <= 32 and all(0 <= o < ROTATING_HISTORY for o in c.offsets)):
                raise ValueError(f"skip context {c.name!r}: 1 to 32 offsets below {ROTATING_HISTORY}")
            if isinstance(c, IndirectHash) and not (1 <= c.outer_order <= 4 and 1 <= c.inner_order <= 4):
                raise ValueError(f"indirect hash {c.name!r}: orders 1..4")
            if isinstance(c, Record) and c.kind not in ("above", "above_left", "column", "distance"):
                raise ValueError(f"record context {c.name!r}: kind above, above_left, column or distance")
            if isinstance(c, Text) and not (c.kind in ("classes", "column_above", "above_last")
                                            and 0 <= c.length <= 21):
                raise ValueError(f"text context {c.name!r}: kind classes, column_above or above_last; length <= 21")
            if isinstance(c, Word) and not (c.first >= 0 and c.count >= 0 and c.first + c.count <= 6
                                            and 0 <= c.bytes <= 32 and c.count + c.bytes >= 1):
                raise ValueError(f"word context {c.name!r}: words 0..5, 0 to 32 bytes")
        names = self.input_names()
        for c in self.contexts:
            if isinstance(c, Active) and not (len(c.inputs) <= 32 and all(i in names for i in c.inputs)):
                raise ValueError(f"active context {c.name!r}: at most 32 inputs, each a model input's name")
        for m in self.of_type(Indirect):
            if not 0 <= m.limit <= 65535:  # its update counts are 16-bit
                raise ValueError(f"indirect model {m.name!r}: limit 0..65535")
        for m in self.of_type(ContextMap):
            if not (m.contexts and len(m.contexts) <= 64 and all(c in slots for c in m.contexts)):
                raise ValueError(f"context map {m.name!r}: 1 to 64 known contexts")
            if not (4 <= m.table_bits <= 32 and 1 <= m.limit <= 1023):
                raise ValueError(f"context map {m.name!r}: table_bits 4..32, limit 1..1023")
        for a in self.apms:
            if not (0 <= a.table_bits <= 24 and 0 <= a.limit <= 65535):
                raise ValueError(f"apm {a.name!r}: table_bits 0..24")
        layers = [m.layer for m in self.mixers]
        if layers != sorted(layers) or layers.count(2) != 1 or 0 not in layers or 1 not in layers:
            raise ValueError(f"specification {self.name!r}: mixers must be layer 0s, then layer 1s, then one final")
        if len(self.of_type(Ppmd)) > 1 or len(self.of_type(Lstm)) > 1:
            raise ValueError("at most one PPMd and one LSTM model")

    # ---- identity -------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        def item(obj):
            d = {"type": type(obj).__name__}
            for f in fields(obj):
                v = getattr(obj, f.name)
                if f.metadata.get("later") and f.default is not MISSING and v == f.default:
                    continue
                d[f.name] = list(v) if isinstance(v, tuple) else v
            return d

        doc = {
            "name": self.name,
            "contexts": [item(c) for c in self.contexts],
            "models": [item(m) for m in self.models],
            "mixers": [item(m) for m in self.mixers],
            "history_reserve": self.history_reserve,
        }
        if self.apms:  # absent when empty, so that the gmix specifications keep their digests
            doc["apms"] = [item(a) for a in self.apms]
        if self.sequential_mixing:  # absent when False, so that earlier specifications keep their digests
            doc["sequential_mixing"] = True
        if self.warm_start:
            doc["warm_start"] = True
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Specification":
        kinds = {k.__name__: k for k in (*get_args(Context), *get_args(Model), Mixer, Apm)}
        doc = json.loads(text)

        def build(d):
            d = dict(d)
            kind = kinds[d.pop("type")]
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

        spec = cls(
            name=doc["name"],
            contexts=tuple(build(c) for c in doc["contexts"]),
            models=tuple(build(m) for m in doc["models"]),
            mixers=tuple(build(m) for m in doc["mixers"]),
            history_reserve=int(doc.get("history_reserve", 1 << 16)),
            apms=tuple(build(a) for a in doc.get("apms", [])),
            sequential_mixing=doc.get("sequential_mixing", False) is True,
            warm_start=doc.get("warm_start", False) is True,
        )
        spec.validate()
        return spec

    def digest(self) -> bytes:
        """16-byte identity of the specification (recorded in archives and model files)."""
        return hashlib.sha256(self.to_json().encode()).digest()[:16]
