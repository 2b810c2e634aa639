"""The fusion switch: fused fast ops on (the default) or the readable composite references.

A fused op (a Dense layer with its activation, BCE-with-logits, the Gaussian KL, the
reparameterization, Adam's update, convolutions) computes exactly what a short composition of
primitive ops computes, in fewer passes over memory. With fusion off, every model runs on those
compositions instead, so a learner can step through ``MatMul.backward`` during a real training step:

    mg.set_fusion(False)            # from now on
    with mg.using_fusion(False):    # inside this block only
        ...

Both paths give the same values and gradients up to float rounding; the tests hold them equal.
"""

from contextlib import contextmanager

__all__ = ["set_fusion", "using_fusion", "is_fusion_enabled"]

_fusion_enabled = True


def is_fusion_enabled():
    """True when fused ops run (the default); False when models use the composite references."""
    return _fusion_enabled


def set_fusion(enabled):
    """Turn fused ops on (``True``, the default) or off (``False``: composite references)."""
    global _fusion_enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"set_fusion: expected True or False, got {enabled!r}")
    _fusion_enabled = enabled


@contextmanager
def using_fusion(enabled):
    """Run a block with fusion on or off, then restore the previous setting."""
    previous = _fusion_enabled
    set_fusion(enabled)
    try:
        yield
    finally:
        set_fusion(previous)
