"""Test-only driver of the LSTM port (gmixpy/models/lstm.py): the BPTT gradients without the update."""
from __future__ import annotations

from gmixpy._jit import njit
from gmixpy.models.lstm import _bptt, _record


@njit
def lstm_gradients(params, memory, state, byte):
    """Record `byte` like lstm_learn and run the BPTT, but apply no update.  Meaningful when state.epoch[0] == 0
    (the horizon has just been filled).  Returns the gradients of the cross-entropy summed over the horizon (exact
    unless an error exceeded gradient_clip and was clipped), given the state at the start of the horizon and the
    output-layer copies used, as views of the memory scratch: (grad float32[L, O + N, 3C] in the `weights`
    layout, gamma_grad float32[L, 3, C], beta_grad float32[L, 3, C]).  Writes the learning scratch of `memory`
    (never its weights or Adam moments) and the byte history."""
    old_input = _record(params, state, byte)
    _bptt(params, memory, state, old_input)
    return memory.grad, memory.gamma_grad, memory.beta_grad
