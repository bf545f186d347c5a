"""The predictor: every model family of a Specification, run in gmix's order, one bit at a time.

Call order per bit (gmix's Predictor::Predict / Perceive / Learn):
    p = predict(params, ltm, stm)          contexts, then every model, then the mixers -> P(bit = 1), clamped
    update(params, ltm, stm, bit, learn)   perceive the bit; when `learn`, every model learns from it
Long-term memory (LongTermMemory) is written only when learn is true; short-term memory (ShortTermMemory) is the
running state and always evolves.  Both are NamedTuples of NamedTuples of numpy arrays, so they can be copied,
saved and compared field by field without any hand-kept list.

`new_model(spec)` builds the three tuples.  Every family is always present (with zero models when the
specification has none), so all specifications share the same types and one compiled kernel.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import njit
from ._values import first_not_finite
from .contexts.basic import LAST_BYTE, BasicState, HistoryMemory, basic_check, basic_learn, basic_new, basic_predict
from .contexts.indirect_hash import (
    IndirectHashParams,
    IndirectHashState,
    indirect_hash_check,
    indirect_hash_new,
    indirect_hash_update,
)
from .contexts.interval import IntervalParams, interval_new, interval_update
from .contexts.record import RecordParams, RecordState, record_check, record_new, record_update
from .contexts.signals import (
    SignalParams,
    SignalState,
    signals_after_models,
    signals_check,
    signals_new,
    signals_update,
)
from .contexts.skip import SkipParams, skip_new, skip_update
from .contexts.text import TextParams, TextState, text_check, text_new, text_update
from .contexts.word import WordParams, WordState, word_check, word_new, word_update
from .mixer.mixer import MixerMemory, MixerParams, MixerState, mixer_check, mixer_learn, mixer_new, mixer_predict
from .mixer.sigmoid import logistic
from .models.apm import ApmMemory, ApmParams, ApmState, apm_check, apm_learn, apm_new, apm_predict
from .models.byte_model import (
    ByteModelParams,
    ByteModelState,
    byte_models_check,
    byte_models_new,
    byte_models_predict,
    byte_models_update,
)
from .models.context_map import (
    ContextMapMemory,
    ContextMapParams,
    ContextMapState,
    context_map_check,
    context_map_learn,
    context_map_new,
    context_map_predict,
)
from .models.indirect import (
    IndirectMemory,
    IndirectParams,
    IndirectState,
    indirect_check,
    indirect_learn,
    indirect_new,
    indirect_predict,
)
from .models.lstm import LstmMemory, LstmParams, LstmState, lstm_check
from .models.match import MatchMemory, MatchParams, MatchState, match_check, match_learn, match_new, match_predict
from .models.ppmd import PpmdParams, PpmdState, ppmd_check
from .spec import (
    SIGNALS,
    ContextMap,
    Indirect,
    IndirectHash,
    Interval,
    Lstm,
    Match,
    Ppmd,
    Record,
    Skip,
    Specification,
    Text,
    Word,
)


class Params(NamedTuple):  # immutable, built from the specification
    byte_models: ByteModelParams
    ppmd: PpmdParams
    lstm: LstmParams
    skip: SkipParams
    interval: IntervalParams
    indirect_hash: IndirectHashParams
    word: WordParams
    record: RecordParams
    text: TextParams
    signals: SignalParams
    indirect: IndirectParams
    match: MatchParams
    context_map: ContextMapParams
    mixer: MixerParams
    apm: ApmParams


class LongTermMemory(NamedTuple):  # written only by learning
    history: HistoryMemory
    lstm: LstmMemory
    indirect: IndirectMemory
    match: MatchMemory
    context_map: ContextMapMemory
    mixer: MixerMemory
    apm: ApmMemory


class ShortTermMemory(NamedTuple):  # the running state
    basic: BasicState
    byte_models: ByteModelState
    ppmd: PpmdState               # PPMd's whole model (gmix counts it as running state: see byte_model.py)
    lstm: LstmState
    indirect_hash: IndirectHashState
    word: WordState
    record: RecordState
    text: TextState
    signals: SignalState
    indirect: IndirectState
    match: MatchState
    context_map: ContextMapState
    mixer: MixerState
    apm: ApmState


def new_model(spec: Specification) -> tuple[Params, LongTermMemory, ShortTermMemory]:
    spec.validate()
    slots = spec.slots()
    # Mixer input indices follow the models' order, each model taking `inputs` consecutive indices.
    starts, at = [], 0
    for m in spec.models:
        starts.append(at)
        at += m.inputs
    n_inputs = at

    def of(kind):
        return [(m, s) for m, s in zip(spec.models, starts) if isinstance(m, kind)]

    indirect = of(Indirect)
    match = of(Match)
    ppmd, lstm = of(Ppmd), of(Lstm)
    bp, pp, ps, lp, lm, ls, bstate = byte_models_new(ppmd[0][1] if ppmd else -1, lstm[0][1] if lstm else -1,
                                                     ppmd[0][0] if ppmd else None, lstm[0][0] if lstm else None)
    basic_state, history = basic_new(len(slots), spec.history_reserve)
    ih_params, ih_state = indirect_hash_new([c for c in spec.contexts if isinstance(c, IndirectHash)], slots)
    ind_params, ind_memory, ind_state = indirect_new([m for m, _ in indirect], slots, [s for _, s in indirect])
    m_params, m_memory, m_state = match_new([m for m, _ in match], slots, [s for _, s in match])
    cm = of(ContextMap)
    cm_params, cm_memory, cm_state = context_map_new([m for m, _ in cm], slots, [s for _, s in cm])
    x_params, x_memory, x_state = mixer_new(spec.mixers, slots, n_inputs, spec.skip_connected(),
                                            spec.sequential_mixing, spec.warm_start)
    w_params, w_state = word_new([c for c in spec.contexts if isinstance(c, Word)], slots)
    a_params, a_memory, a_state = apm_new(spec.apms, slots)
    r_params, r_state = record_new([c for c in spec.contexts if isinstance(c, Record)], slots)
    t_params, t_state = text_new([c for c in spec.contexts if isinstance(c, Text)], slots)
    s_params, s_state = signals_new([c for c in spec.contexts if isinstance(c, SIGNALS)], slots,
                                    spec.input_names())
    params = Params(
        byte_models=bp,
        ppmd=pp,
        lstm=lp,
        skip=skip_new([c for c in spec.contexts if isinstance(c, Skip)], slots),
        interval=interval_new([c for c in spec.contexts if isinstance(c, Interval)], slots),
        indirect_hash=ih_params,
        word=w_params,
        record=r_params,
        text=t_params,
        signals=s_params,
        indirect=ind_params,
        match=m_params,
        context_map=cm_params,
        mixer=x_params,
        apm=a_params,
    )
    ltm = LongTermMemory(history=history, lstm=lm, indirect=ind_memory, match=m_memory, context_map=cm_memory,
                         mixer=x_memory, apm=a_memory)
    stm = ShortTermMemory(basic=basic_state, byte_models=bstate, ppmd=ps, lstm=ls, indirect_hash=ih_state,
                          word=w_state, record=r_state, text=t_state, signals=s_state, indirect=ind_state,
                          match=m_state, context_map=cm_state, mixer=x_state, apm=a_state)
    return params, ltm, stm


def check_model(params: Params, ltm: LongTermMemory, stm: ShortTermMemory) -> str | None:
    """The first stored value that the compiled kernels (which run without bounds checks) could not survive, as
    "dotted.name out of range" / "... not finite", or None.  Every family states its own invariants; this runs
    them all, vectorised, on memories read from a file (params are rebuilt from the specification, never read)."""
    history_length = int(ltm.history.history_length[0])
    return (first_not_finite(ltm, "ltm") or first_not_finite(stm, "stm")
            or basic_check(stm.basic, ltm.history)
            or byte_models_check(stm.byte_models)
            or ppmd_check(params.ppmd, stm.ppmd)
            or lstm_check(params.lstm, ltm.lstm, stm.lstm)
            or indirect_hash_check(params.indirect_hash, stm.indirect_hash)
            or word_check(stm.word)
            or signals_check(stm.signals)
            or record_check(stm.record)
            or text_check(stm.text)
            or apm_check(ltm.apm, stm.apm)
            or indirect_check(ltm.indirect, stm.indirect)
            or match_check(params.match, ltm.match, stm.match, history_length)
            or context_map_check(params.context_map, ltm.context_map, stm.context_map)
            or mixer_check(params.mixer, ltm.mixer, stm.mixer))


_EPS = np.float32(0.0001)
_ONE_MINUS_EPS = np.float32(1.0) - np.float32(0.0001)


@njit(inline="always")
def clamp_probability(p):
    """A probability kept in [1e-4, 1 - 1e-4] (float32), as every coded probability is."""
    if p < _EPS:
        return _EPS
    if p > _ONE_MINUS_EPS:
        return _ONE_MINUS_EPS
    return p


@njit(inline="always")
def predict(P, L, S):
    """P(next bit = 1) as float32 in [1e-4, 1 - 1e-4]."""
    b = S.basic
    contexts = b.contexts
    boundary = basic_predict(b)
    if boundary:
        interval_update(P.interval, b)
        skip_update(P.skip, b)
        indirect_hash_update(P.indirect_hash, S.indirect_hash, contexts)
        word_update(P.word, S.word, b, contexts[LAST_BYTE])
        record_update(P.record, S.record, b)
        text_update(P.text, S.text, b)
    inputs = S.mixer.inputs0
    byte_models_predict(P.byte_models, P.ppmd, S.ppmd, P.lstm, L.lstm, S.lstm, S.byte_models, contexts, boundary,
                        b.new_bit[0], contexts[LAST_BYTE], inputs)
    indirect_predict(P.indirect, L.indirect, S.indirect, contexts, inputs)
    match_predict(P.match, L.match, S.match, L.history, contexts, b.new_bit[0], b.recent_bits[0] == 1, inputs)
    context_map_predict(P.context_map, L.context_map, S.context_map, contexts, b.recent_bits[0], inputs)
    signals_after_models(P.signals, S.signals, contexts, inputs, S.match, P.match.slot.shape[0])
    out = mixer_predict(P.mixer, L.mixer, S.mixer, contexts, inputs)
    prob = apm_predict(P.apm, L.apm, S.apm, contexts, out, logistic(out))
    prob = clamp_probability(prob)
    S.signals.last_p[0] = prob
    return prob


@njit(inline="always")
def update(P, L, S, bit, learn):
    """Perceive `bit`; learn from it when `learn`.  Learning appends at most one byte to the history and
    allocates at most P.mixer.widest weights: the chunk loops check capacity before each byte."""
    b = S.basic
    b.new_bit[0] = bit
    byte_models_update(P.byte_models, P.lstm, L.lstm, S.lstm, b.recent_bits[0], bit, learn)
    signals_update(P.signals, S.signals, bit)
    if learn:
        basic_learn(b, L.history)
        indirect_learn(P.indirect, L.indirect, S.indirect, bit)
        match_learn(P.match, L.match, S.match, L.history, b.contexts, b.recent_bits[0], bit)
        context_map_learn(P.context_map, L.context_map, S.context_map, b.recent_bits[0], bit)
        mixer_learn(P.mixer, L.mixer, S.mixer, bit)
        apm_learn(P.apm, L.apm, S.apm, bit)


@njit(inline="always")
def has_room(P, L):
    """True when one more byte can be learned without growing a buffer."""
    return (L.history.history_length[0] + 1 <= L.history.history.shape[0]
            and L.mixer.weights_used[0] + 8 * P.mixer.widest[0] <= L.mixer.weights.shape[0])


def grow(ltm: LongTermMemory, P: Params) -> LongTermMemory:
    """A copy of `ltm` whose growing buffers have room for at least one more byte (capacity doubles)."""
    h = ltm.history
    if h.history_length[0] + 1 > h.history.shape[0]:
        bigger = np.zeros(max(16, 2 * h.history.shape[0]), np.uint8)
        bigger[: h.history.shape[0]] = h.history
        h = h._replace(history=bigger)
    x = ltm.mixer
    need = int(x.weights_used[0] + 8 * P.mixer.widest[0])
    if need > x.weights.shape[0]:
        bigger = np.zeros(max(need, 2 * x.weights.shape[0]), np.float32)
        bigger[: x.weights.shape[0]] = x.weights
        x = x._replace(weights=bigger)
    return ltm._replace(history=h, mixer=x)
